"""The operator's side of the ledger (counting ended reminders, reopening them, listing) and tenant
isolation of every ledger method, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt

from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import LedgerWrite, Tenant
from tests.conftest import customer
from tests.contract.conftest import TODAY, StorageUnderTest, claim, import_customers, now, pending, rows, token
from tests.fakes.ledger import RESENT

DAY = dt.timedelta(days=1)


def finish(storage: StorageUnderTest, tenant: Tenant, outcomes: list[LedgerWrite]) -> None:
    """Claim these rows and record their outcomes, as a send task does."""
    claimed_at = token(claim(storage, tenant, [reminder_id for reminder_id, _, _ in outcomes]))
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many(outcomes, claimed_at)


def test_ended_reminders_are_counted_and_reopened_by_status_and_end_time(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 6)
    finish(
        storage,
        tenant,
        [
            (ids[0], ReminderStatus.FAILED, {"last_error": "HTTP 422"}),
            (ids[1], ReminderStatus.FAILED, {"last_error": RESENT + RESENT + "HTTP 500"}),
            (ids[2], ReminderStatus.FAILED, {}),
            (ids[3], ReminderStatus.SENT, {}),
            (ids[4], ReminderStatus.UNKNOWN, {"last_error": "no answer"}),
        ],
    )
    storage.set_reminders(ids[2:3], updated_at=now() - 2 * DAY)  # ended two days ago
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert [ledger.count_ended("failed", since) for since in (None, now() - DAY, now() + DAY)] == [3, 2, 0]
        assert ledger.count_ended("pending", None) == 0  # only closed statuses end
        assert ledger.reopen("failed", now() + DAY) == []
        assert sorted(ledger.reopen("failed", now() - DAY)) == ids[:2]
        assert ledger.reopen("failed", now() - DAY) == []  # reopened rows are pending, not ended
        assert ledger.reopen("pending", None) == []
    after = rows(storage, tenant)
    for reminder_id in ids[:2]:
        row = after[reminder_id]
        assert (row.status, row.enqueued_at, row.attempts, row.send_started_at) == ("pending", None, 0, None)
    assert after[ids[0]].last_error == RESENT + "HTTP 422"
    assert after[ids[1]].last_error == RESENT + "HTTP 500"  # the note is never repeated
    assert (after[ids[2]].status, after[ids[4]].status) == ("failed", "unknown")
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).reopen("failed", None) == [ids[2]]
    assert rows(storage, tenant)[ids[2]].last_error == RESENT


def test_reopening_skipped_reminders_keeps_their_reason(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 1)
    finish(storage, tenant, [(ids[0], ReminderStatus.SKIPPED, {"skip_reason": "too_long"})])
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).count_ended("skipped", None) == 1
        assert tx.ledger(tenant.id).reopen("skipped", None) == ids
    row = rows(storage, tenant)[ids[0]]
    assert (row.status, row.skip_reason) == ("pending", "too_long")


def test_a_resend_skips_customers_removed_or_opted_out_since(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    finish(storage, tenant, [(reminder_id, ReminderStatus.FAILED, {}) for reminder_id in ids])
    with storage.uow() as tx:
        removed = tx.catalog.find_customer(tenant.id, f"{tenant.slug}-0")
        opted_out = tx.catalog.find_customer(tenant.id, f"{tenant.slug}-1")
        assert removed is not None and opted_out is not None
        tx.catalog.remove_customer(tenant.id, removed.id)
        tx.catalog.set_opted_out(tenant.id, opted_out.id, True)
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).count_ended("failed", None) == 1
        assert tx.ledger(tenant.id).reopen("failed", None) == [ids[2]]


def test_the_listing_shows_the_newest_rows_first_with_a_status_and_a_limit(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 6)
    finish(storage, tenant, [(ids[5], ReminderStatus.SENT, {}), (ids[1], ReminderStatus.FAILED, {})])
    claim(storage, tenant, ids[4:5])
    with storage.uow() as tx:
        tx.ledger(tenant.id).mark_enqueued(ids[3:4])
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert [row.id for row in ledger.list_reminders()] == ids[::-1]
        assert [row.id for row in ledger.list_reminders(limit=3)] == ids[:2:-1]
        assert [row.id for row in ledger.list_reminders(limit=0)] == []
        assert [row.id for row in ledger.list_reminders("pending")] == [ids[3], ids[2], ids[0]]
        assert [row.id for row in ledger.list_reminders("pending", limit=1)] == [ids[3]]
        assert [row.id for row in ledger.list_reminders("sent")] == [ids[5]]
        assert ledger.list_reminders("unknown") == []
        view = ledger.list_reminders("sending")[0]
    assert (view.id, view.tenant_id, view.local_date, view.window_days) == (ids[4], tenant.id, TODAY, 3)
    assert (view.expires_on, view.attempts) == (TODAY + dt.timedelta(days=3), 1)


def test_a_tenants_ledger_never_sees_or_changes_another_tenants_rows(storage: StorageUnderTest) -> None:
    mine, my_ids = pending(storage, 2)
    theirs, their_ids = pending(storage, 3)
    import_customers(storage, theirs, [customer("unclaimed", TODAY + DAY)])
    their_token = token(claim(storage, theirs, their_ids[:1]))
    their_rows = rows(storage, theirs)
    with storage.uow() as tx:
        ledger = tx.ledger(mine.id)
        subscriptions = [row.subscription_id for row in their_rows.values()]
        assert ledger.subscription_jobs(subscriptions) == {}
        assert ledger.preview_due_reminders(TODAY, (5, 3, 1)) == []
        assert ledger.claim_due_reminders(TODAY, (5, 3, 1)) == []
        assert ledger.start_sending(their_ids) == []
        assert ledger.mark_started(their_ids, their_token) == set()
        ledger.finish_many([(their_ids[0], ReminderStatus.SENT, {})], their_token)
        ledger.mark_enqueued(their_ids)
        assert ledger.defer_pending(their_ids) == 0
        assert [row.id for row in ledger.list_reminders()] == my_ids[::-1]
        assert (ledger.count_status("pending"), ledger.count_status("sending")) == (2, 0)
        assert (ledger.outstanding(now() + DAY), ledger.count_unpublished(now() + DAY)) == (0, 2)
        assert ledger.stamp_unpublished(now(), 10) == my_ids
        assert ledger.published_pending(now() - DAY) == my_ids
        assert ledger.cancel_pending("tenant_offboarded") == 2
        assert ledger.count_ended("skipped", None) == 2
        assert sorted(ledger.reopen("skipped", None)) == my_ids
    assert rows(storage, theirs) == their_rows
    with storage.uow() as tx:
        assert len(tx.ledger(theirs.id).preview_due_reminders(TODAY, (5, 3, 1))) == 1


def test_empty_id_lists_match_nothing(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 1)
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert ledger.start_sending([]) == []
        assert ledger.mark_started([], now()) == set()
        assert ledger.subscription_jobs([]) == {}
        assert ledger.defer_pending([]) == 0
        ledger.mark_enqueued([])
        ledger.finish_many([], now())
    assert rows(storage, tenant)[ids[0]].enqueued_at is None
