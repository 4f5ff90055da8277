"""Malformed messages pushed raw onto a queue a real ``tenant-worker worker`` consumes: each one is
logged without its body, removed and counted, and the worker goes on sending reminders.

kombu's Redis transport keeps a queue as a list of JSON envelopes; the tests LPUSH their own items
with redis-py, exactly where a publisher would. Each test has its own tenant on its own dedicated
queue in Redis database 14, which the session worker does not read.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.redis_queues import discarded_counts, queue_depths
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import ACCESS_KEY, BIN, add_customers, customer, put_on_queue, redis_db_url, wait_until

DB = 24  # a Redis database no other test uses (the test server has 32)
# Personal data the malformed messages carry: it must never reach the worker's log.
PHONE = "+31687654321"


def envelope(app: Any, client: redis.Redis, queue: str, args: list[Any]) -> dict[str, Any]:
    """A well-formed send task for ``queue`` exactly as Celery and kombu write it (published before
    any worker reads the queue, then taken back), for the shapes that break one part of it."""
    app.send_task(constants.TASK_SEND_REMINDERS, args=args, queue=queue, ignore_result=True)
    return dict(json.loads(client.rpop(queue)))


def not_json(_: dict[str, Any]) -> bytes:
    return b"\xff\xfe" + PHONE.encode() + b" is not JSON"


def a_json_list(_: dict[str, Any]) -> str:
    return json.dumps([1, 2, PHONE])


def a_json_object_without_envelope(_: dict[str, Any]) -> str:
    return json.dumps({"a": 1, "phone": PHONE})


def a_json_string(_: dict[str, Any]) -> str:
    return json.dumps(PHONE)


def headers_not_a_mapping(good: dict[str, Any]) -> str:
    return json.dumps({**good, "headers": [PHONE, 2]})


def headers_a_string(good: dict[str, Any]) -> str:
    return json.dumps({**good, "headers": PHONE})


def body_not_base64(good: dict[str, Any]) -> str:
    body = PHONE + "x"  # 13 characters: no base64 string has a length of 4n + 1
    with pytest.raises(ValueError):
        base64.b64decode(body)
    assert good["properties"]["body_encoding"] == "base64"
    return json.dumps({**good, "body": body})


def body_base64_but_not_json(good: dict[str, Any]) -> str:
    return json.dumps({**good, "body": base64.b64encode(f"not json {PHONE}".encode()).decode()})


def body_not_args_kwargs_embed(good: dict[str, Any]) -> str:
    return json.dumps({**good, "body": base64.b64encode(json.dumps({"phone": PHONE}).encode()).decode()})


def no_task_id(good: dict[str, Any]) -> str:
    headers = {k: v for k, v in good["headers"].items() if k != "id"}
    return json.dumps({**good, "headers": headers})


def unknown_task(good: dict[str, Any]) -> str:
    return json.dumps({**good, "headers": {**good["headers"], "task": "tenant_worker.no_such_task"}})


def pickled(good: dict[str, Any]) -> str:
    return json.dumps({**good, "content-type": "application/x-python-serialize"})


# Each reason with the shapes that cause it; one worker per reason takes them all.
SHAPES: dict[str, list[Callable[[dict[str, Any]], str | bytes]]] = {
    "not_json": [not_json],
    "not_an_envelope": [a_json_list, a_json_object_without_envelope, a_json_string],
    "headers_not_a_mapping": [headers_not_a_mapping, headers_a_string],
    "undecodable_body": [body_not_base64, body_base64_but_not_json],
    "invalid_task": [body_not_args_kwargs_embed, no_task_id, pickled],
    "unknown_task": [unknown_task],
}


def statuses(sessions, tenant_id: int) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(ReminderRow.status).where(ReminderRow.tenant_id == tenant_id)))


def send_one_reminder(sessions, tenant, worker, ref: str) -> None:
    """Make one more reminder of ``tenant`` due, sweep it, and wait until the worker sent it."""
    add_customers(sessions, tenant, [customer(ref, local_today(tenant.timezone) + dt.timedelta(days=1))])
    before = len(statuses(sessions, tenant.id))
    sweep_tenant(
        sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
    )
    wait_until(
        lambda: statuses(sessions, tenant.id).count("sent") == before + 1, 30, f"reminder {ref} to be sent"
    )  # fmt: skip


def discarded(client: redis.Redis, queue: str, reason: str) -> int:
    return discarded_counts(client).get(queue, {}).get(reason, 0)


@pytest.mark.parametrize("reason", SHAPES)
def test_malformed_messages_are_logged_without_their_body_removed_counted_and_the_worker_keeps_sending(
    reason, sessions, make_tenant, redis_url, start_worker, worker_env
):
    url = redis_db_url(redis_url, DB)
    client = redis.Redis.from_url(url)
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.dedicated_queue(tenant.slug))
    good = envelope(create_app(load_settings({**worker_env, "REDIS_URL": url})), client, tenant.queue, [PHONE])
    worker = start_worker("--tenant", tenant.slug, REDIS_URL=url)

    pushed = time.monotonic()
    client.lpush(tenant.queue, *(shape(good) for shape in SHAPES[reason]))

    count = len(SHAPES[reason])
    wait_until(lambda: discarded(client, tenant.queue, reason) == count, 15, f"{count} messages counted as {reason}")
    counted = time.monotonic()
    assert worker.process.poll() is None, worker.text()[-3000:]
    assert queue_depths(client, [tenant.queue]) == {tenant.queue: 0}
    assert not client.hexists("unacked", good["properties"]["delivery_tag"])
    send_one_reminder(sessions, tenant, worker, "after")
    print(
        f"{reason}: {count} discarded {counted - pushed:.2f} s after the push, "
        f"the next reminder sent {time.monotonic() - counted:.2f} s later (sweep included)"
    )
    assert worker.process.poll() is None
    log = worker.text()
    assert log.count(f"discarded a malformed message from queue {tenant.queue}: {reason}") == count
    assert PHONE not in log and PHONE.lstrip("+") not in log
    assert "Unrecoverable error" not in log


def test_a_malformed_message_arriving_mid_batch_neither_stops_the_worker_nor_that_batch(
    sessions, make_tenant, redis_url, start_worker, worker_env
):
    url = redis_db_url(redis_url, DB)
    client = redis.Redis.from_url(url)
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.dedicated_queue(tenant.slug))
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(3)])
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=1.5) as slow:
        worker = start_worker(
            "--tenant", tenant.slug, REDIS_URL=url, MESSAGEBIRD_ENDPOINT=slow.url, MESSAGEBIRD_READ_TIMEOUT="10"
        )
        sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )
        wait_until(lambda: "sending" in statuses(sessions, tenant.id), 15, "a batch in flight")

        client.lpush(tenant.queue, not_json({}))

        wait_until(lambda: discarded(client, tenant.queue, "not_json") == 1, 15, "the message to be discarded")
        assert "sending" in statuses(sessions, tenant.id), "the batch should still be in flight"
        wait_until(lambda: statuses(sessions, tenant.id) == ["sent"] * 3, 30, "the batch in flight to be sent")
        send_one_reminder(sessions, tenant, worker, "after")
        assert worker.process.poll() is None
        assert len({r.reference for r in slow.accepted()}) == 4

    out = subprocess.run(
        [str(BIN / "tenant-worker"), "queues", "--json"],
        env={**worker_env, "REDIS_URL": url}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["discarded"][tenant.queue] == {"not_json": 1}
