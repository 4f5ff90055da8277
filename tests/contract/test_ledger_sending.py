"""A send task's side of the ledger: the ``pending -> sending`` claim and its token, marking requests
started, and recording outcomes only for rows the claim still holds, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from tenant_worker.domain.model import ReminderStatus
from tests.conftest import customer
from tests.contract.conftest import (
    TODAY,
    StorageUnderTest,
    claim,
    import_customers,
    new_tenant,
    now,
    pending,
    rows,
    token,
)
from tests.fakes import ConstraintViolation

SECOND = dt.timedelta(seconds=1)


def test_start_sending_takes_only_pending_rows_and_gives_their_jobs_one_token(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    import_customers(
        storage,
        tenant,
        [customer("a", due, phone="+31611110001", name="Ann"), customer("b", due), customer("c", due, opted_out=True)],
    )
    with storage.uow() as tx:
        ids = sorted(reminder_id for reminder_id, _ in tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1)))
    jobs = claim(storage, tenant, [ids[1], ids[0], ids[2], ids[0] + 10_000])
    assert [job.reminder_id for job in jobs] == ids[:2]  # by id; the skipped and the unknown id are not taken
    claimed_at = token(jobs)
    first = jobs[0]
    assert (first.window_days, first.expires_on, first.customer_name, first.phone, first.attempts) == (
        3,
        due,
        "Ann",
        "+31611110001",
        1,
    )
    assert (first.plan, first.amount, first.currency) == ("Fiber 100", Decimal("29.95"), "EUR")
    after = rows(storage, tenant)
    assert [(after[i].status, after[i].updated_at, after[i].send_started_at) for i in ids[:2]] == [
        ("sending", claimed_at, None)
    ] * 2
    assert claim(storage, tenant, ids) == []  # a duplicated task finds nothing to send


def test_each_claim_counts_an_attempt(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 1)
    first = token(claim(storage, tenant, ids))
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many([(ids[0], ReminderStatus.PENDING, {"last_error": "HTTP 503"})], first)
    (job,) = claim(storage, tenant, ids)
    assert job.attempts == 2
    assert job.claimed_at is not None and job.claimed_at > first


def test_only_the_claim_still_holding_a_row_may_mark_it_started(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    claimed_at = token(claim(storage, tenant, ids[:2]))
    before = now()
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert ledger.mark_started(ids, claimed_at - SECOND) == set()
        assert ledger.mark_started(ids, claimed_at) == set(ids[:2])  # the pending row is no claim's
    after = rows(storage, tenant)
    for reminder_id in ids[:2]:
        started = after[reminder_id].send_started_at
        assert started is not None and before - 5 * SECOND <= started <= now()
    assert after[ids[2]].send_started_at is None


def test_finish_many_records_each_outcome_with_its_default_timestamps(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 6)
    claimed_at = token(claim(storage, tenant, ids))
    sent_earlier = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    rendered = {"body": "Hi Ann", "encoding": "GSM-7", "segments": 1}
    before = now()
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many(
            [
                (ids[0], ReminderStatus.SENT, {"provider_message_id": "mb-1", "last_error": None, **rendered}),
                (ids[1], ReminderStatus.SENT, {"sent_at": sent_earlier}),
                (ids[2], ReminderStatus.PENDING, {"last_error": "HTTP 503", **rendered}),
                (ids[3], ReminderStatus.PENDING, {"last_error": "deferred", "enqueued_at": None, "attempts": 0}),
                (ids[4], ReminderStatus.FAILED, {"last_error": "HTTP 422"}),
                (ids[5], ReminderStatus.SKIPPED, {"skip_reason": "too_long", **rendered}),
            ],
            claimed_at,
        )
    after = rows(storage, tenant)
    sent, sent_given, retry, deferred, failed, skipped = (after[i] for i in ids)
    assert (sent.status, sent.provider_message_id, sent.body, sent.encoding, sent.segments) == (
        "sent",
        "mb-1",
        "Hi Ann",
        "GSM-7",
        1,
    )
    assert sent.sent_at is not None and before - 5 * SECOND <= sent.sent_at <= now()
    assert sent.updated_at == sent.sent_at
    assert (sent_given.status, sent_given.sent_at, sent_given.body) == ("sent", sent_earlier, None)
    assert (retry.status, retry.last_error, retry.attempts) == ("pending", "HTTP 503", 1)
    assert retry.enqueued_at == sent.sent_at  # the caller publishes the retry next
    assert (deferred.status, deferred.enqueued_at, deferred.attempts) == ("pending", None, 0)
    assert (failed.status, failed.last_error, failed.sent_at, failed.enqueued_at) == ("failed", "HTTP 422", None, None)
    assert (skipped.status, skipped.skip_reason, skipped.segments) == ("skipped", "too_long", 1)


def test_finish_many_leaves_rows_another_claim_holds_and_a_second_run_changes_nothing(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = pending(storage, 2)
    claimed_at = token(claim(storage, tenant, ids))
    outcomes = [(i, ReminderStatus.SENT, {"provider_message_id": f"mb-{i}"}) for i in ids]
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many(outcomes, claimed_at - SECOND)
        tx.ledger(tenant.id).finish_many(outcomes, None)
    assert {row.status for row in rows(storage, tenant).values()} == {"sending"}
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many(outcomes[:1], claimed_at)
    once = rows(storage, tenant)
    with storage.uow() as tx:
        tx.ledger(tenant.id).finish_many([(ids[0], ReminderStatus.FAILED, {"last_error": "late"})], claimed_at)
        tx.ledger(tenant.id).finish_many(outcomes, claimed_at)
    twice = rows(storage, tenant)
    assert twice[ids[0]] == once[ids[0]]
    assert (twice[ids[1]].status, twice[ids[1]].provider_message_id) == ("sent", f"mb-{ids[1]}")


def test_finish_many_refuses_a_column_outside_the_outcome_columns_before_writing_anything(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = pending(storage, 2)
    claimed_at = token(claim(storage, tenant, ids))
    with storage.uow() as tx, pytest.raises(ValueError, match="not a reminder outcome column: \\['phone'\\]"):
        tx.ledger(tenant.id).finish_many(
            [(ids[0], ReminderStatus.SENT, {}), (ids[1], ReminderStatus.FAILED, {"phone": "+31600000000"})],
            claimed_at,
        )
    assert {row.status for row in rows(storage, tenant).values()} == {"sending"}


def test_a_skipped_outcome_without_a_reason_is_refused_by_the_schema(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 1)
    claimed_at = token(claim(storage, tenant, ids))
    with pytest.raises((IntegrityError, ConstraintViolation)), storage.uow() as tx:
        tx.ledger(tenant.id).finish_many([(ids[0], ReminderStatus.SKIPPED, {})], claimed_at)
    assert rows(storage, tenant)[ids[0]].status == "sending"


def test_count_status_counts_the_tenants_rows_with_a_status(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 3)
    claim(storage, tenant, ids[:1])
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        counts = [ledger.count_status(status) for status in ("pending", "sending", "sent", "nonsense")]
    assert counts == [2, 1, 0, 0]
