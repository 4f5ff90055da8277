"""Publishing from the ledger: stamping unpublished reminders, counting what is in flight or lost,
deferring and cancelling, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt

from tests.contract.conftest import StorageUnderTest, claim, now, pending, rows

HOUR = dt.timedelta(hours=1)


def test_stamping_publishes_the_oldest_unpublished_reminders_up_to_the_limit(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 5)
    before = now()
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert ledger.stamp_unpublished(before - HOUR, 2) == ids[:2]
        assert ledger.stamp_unpublished(before - HOUR, 2) == ids[2:4]
        assert ledger.stamp_unpublished(before - HOUR, 0) == []
        assert ledger.stamp_unpublished(before - HOUR, -1) == []
        assert ledger.count_unpublished(before - HOUR) == 1
        assert ledger.outstanding(before - HOUR) == 4
    stamped = rows(storage, tenant)
    for reminder_id in ids[:4]:
        stamp = stamped[reminder_id].enqueued_at
        assert stamp is not None and before - dt.timedelta(seconds=5) <= stamp <= now()
    assert stamped[ids[4]].enqueued_at is None


def test_a_publication_older_than_the_cutoff_counts_as_lost_and_is_stamped_again(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).stamp_unpublished(now() - HOUR, 10) == ids
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert (ledger.outstanding(now() - HOUR), ledger.count_unpublished(now() - HOUR)) == (3, 0)
        assert (ledger.outstanding(now() + HOUR), ledger.count_unpublished(now() + HOUR)) == (0, 3)
        assert ledger.published_pending(now() - HOUR) == ids
        assert ledger.published_pending(now() + HOUR) == []
        assert ledger.stamp_unpublished(now() + HOUR, 2) == ids[:2]


def test_a_row_being_sent_is_outstanding_whenever_it_was_published(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    claim(storage, tenant, ids[:1])
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert ledger.outstanding(now() + HOUR) == 1
        assert ledger.count_unpublished(now() + HOUR) == 2
        assert ledger.stamp_unpublished(now() + HOUR, 10) == ids[1:]
        assert ledger.published_pending(now() - HOUR) == ids[1:]


def test_mark_enqueued_records_and_clears_a_publication_whatever_the_status(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    claim(storage, tenant, ids[2:])
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        ledger.mark_enqueued(ids)
        assert ledger.published_pending(now() - HOUR) == ids[:2]
        ledger.mark_enqueued(ids[:1], enqueued=False)
        assert ledger.published_pending(now() - HOUR) == ids[1:2]
        assert ledger.count_unpublished(now() - HOUR) == 1
    after = rows(storage, tenant)
    assert after[ids[0]].enqueued_at is None
    assert after[ids[2]].enqueued_at is not None and after[ids[2]].status == "sending"


def test_deferring_unpublishes_only_rows_still_pending(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    with storage.uow() as tx:
        tx.ledger(tenant.id).stamp_unpublished(now(), 10)
    claim(storage, tenant, ids[:1])
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).defer_pending(ids) == 2
        assert tx.ledger(tenant.id).defer_pending([]) == 0
    after = rows(storage, tenant)
    assert [after[i].enqueued_at is None for i in ids] == [False, True, True]
    assert [after[i].status for i in ids] == ["sending", "pending", "pending"]


def test_cancelling_skips_every_pending_reminder_and_leaves_the_rest(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 4)
    with storage.uow() as tx:
        tx.ledger(tenant.id).stamp_unpublished(now(), 1)
    claim(storage, tenant, ids[3:])
    before = now()
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).cancel_pending("tenant_offboarded") == 3
        assert tx.ledger(tenant.id).cancel_pending("tenant_offboarded") == 0
    after = rows(storage, tenant)
    assert [(after[i].status, after[i].skip_reason) for i in ids] == [
        ("skipped", "tenant_offboarded"),
        ("skipped", "tenant_offboarded"),
        ("skipped", "tenant_offboarded"),
        ("sending", None),
    ]
    assert after[ids[0]].enqueued_at is not None  # the publication is kept, only the status changes
    for reminder_id in ids[:3]:
        stamp = after[reminder_id].updated_at
        assert stamp is not None and stamp >= before - dt.timedelta(seconds=5)
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert (ledger.count_status("skipped"), ledger.count_status("pending"), ledger.count_status("sending")) == (
            3,
            0,
            1,
        )
