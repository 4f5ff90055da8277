"""The screen in front of kombu's Redis transport: which list items it sets aside, and why, and that
whatever it lets through is something kombu can deliver. kombu's in-memory transport provides the
same virtual ``Message`` the Redis transport builds, so nothing needs to run."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu import Connection

from tenant_worker.adapters.celery_consumer import Reason, item_problem

CHANNEL = Connection("memory://").default_channel

# An envelope as Celery and kombu's Redis transport write it (a send task for shard 3).
GOOD: dict[str, Any] = {
    "body": base64.b64encode(b'[[7, [1, 2]], {}, {"callbacks": null, "errbacks": null}]').decode(),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    "headers": {"lang": "py", "task": "tenant_worker.send_reminders", "id": "5b0c4d1e"},
    "properties": {
        "correlation_id": "5b0c4d1e",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": "reminders.shard.03"},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": "0f6a3c2e-7d1b-4c55-9d0e-2b1f7a9c1e44",
    },
}


def changed(**fields: Any) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def with_properties(**fields: Any) -> bytes:
    return changed(properties={**GOOD["properties"], **fields})


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (json.dumps(GOOD).encode(), None),
        (changed(headers=None), None),  # kombu reads no headers as empty ones
        (b"\xff\xfe not json", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (b"[" * 100_000, Reason.NOT_JSON),  # nesting deeper than the JSON parser's recursion limit
        (b'{"__type__": "no such type", "__value__": 1}', Reason.NOT_JSON),  # kombu's JSON hook refuses it
        (b"[1, 2]", Reason.NOT_AN_ENVELOPE),
        (b'{"a": 1}', Reason.NOT_AN_ENVELOPE),
        (b'"str"', Reason.NOT_AN_ENVELOPE),
        (b"null", Reason.NOT_AN_ENVELOPE),
        (changed(properties=[1]), Reason.NOT_AN_ENVELOPE),
        (with_properties(delivery_tag=None), Reason.NOT_AN_ENVELOPE),
        (with_properties(delivery_tag=["unhashable"]), Reason.NOT_AN_ENVELOPE),
        (with_properties(delivery_info=None), Reason.NOT_AN_ENVELOPE),
        (with_properties(delivery_info={"exchange": ""}), Reason.NOT_AN_ENVELOPE),
        (changed(headers=[1, 2]), Reason.HEADERS_NOT_A_MAPPING),
        (changed(headers="str"), Reason.HEADERS_NOT_A_MAPPING),
        (changed(body="abcde"), Reason.UNDECODABLE_BODY),  # 4n + 1 characters: not base64
        (changed(body=12), Reason.UNDECODABLE_BODY),
        (with_properties(body_encoding="rot13"), Reason.UNDECODABLE_BODY),
    ],
)
def test_each_malformed_item_is_named_by_its_reason(item: bytes, reason: Reason | None) -> None:
    assert item_problem(item, CHANNEL) == reason


@given(st.binary(max_size=200))
def test_any_bytes_get_an_answer_rather_than_an_exception(item: bytes) -> None:
    item_problem(item, CHANNEL)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
MAYBE_TEXT = st.text(max_size=12) | JSON
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "body": MAYBE_TEXT | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
        "headers": JSON,
        "content-type": MAYBE_TEXT,
        "properties": JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "delivery_tag": MAYBE_TEXT,
                "body_encoding": st.sampled_from(["base64", "utf-8", "rot13"]) | JSON,
                "delivery_info": JSON
                | st.fixed_dictionaries({}, optional={"exchange": MAYBE_TEXT, "routing_key": MAYBE_TEXT}),
            },
        ),
    },
)


@given(ENVELOPES)
def test_what_the_screen_lets_through_is_something_kombu_can_deliver(envelope: dict[str, Any]) -> None:
    if item_problem(json.dumps(envelope).encode(), CHANNEL) is not None:
        return
    # What kombu's virtual Channel does with it before Celery sees it: build its Message, and
    # remember it as unacknowledged under its delivery tag, exchange and routing key.
    message = CHANNEL.Message(envelope, channel=CHANNEL)
    hash(message.delivery_tag)
    assert isinstance(message.delivery_info["exchange"], str)
    assert isinstance(message.delivery_info["routing_key"], str)
    assert isinstance(message.headers, dict)
