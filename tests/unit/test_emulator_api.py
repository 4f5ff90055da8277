"""The MessageBird emulator's answers, built without sockets: the Message JSON is written from a fixed
template, so it must stay valid JSON and carry back exactly what the request said, whatever that is."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tenant_worker_dev.emulators.messagebird_api import message_reply

json_text = st.text(st.characters(exclude_categories=["Cs"]))  # lone surrogates cannot arrive in JSON


@given(
    originator=json_text,
    body=json_text,
    reference=st.one_of(st.none(), json_text, st.integers()),
    datacoding=st.one_of(st.none(), json_text),
    recipients=st.lists(st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True), min_size=1, max_size=5),
)
def test_message_answer_is_json_that_echoes_the_request_whatever_it_holds(
    originator: str, body: str, reference: object, datacoding: str | None, recipients: list[str]
) -> None:
    payload = {"originator": originator, "body": body, "reference": reference, "datacoding": datacoding}

    reply, message_id = message_reply("http://127.0.0.1:8099", payload, recipients)

    document = json.loads(reply.body)
    assert reply.status == 201
    assert (document["id"], document["href"]) == (message_id, f"http://127.0.0.1:8099/messages/{message_id}")
    assert (document["originator"], document["body"]) == (originator, body)
    assert document["reference"] == (None if reference is None else str(reference))
    assert document["datacoding"] == (datacoding or "plain")
    assert document["recipients"]["totalCount"] == len(recipients)
    assert [item["recipient"] for item in document["recipients"]["items"]] == [int(r) for r in recipients]


def test_message_ids_are_unique_hex_like_messagebirds() -> None:
    payload = {"originator": "TenantCo", "body": "Hi"}

    ids = [message_reply("http://127.0.0.1:1", payload, ["31612345678"])[1] for _ in range(10_000)]

    assert len(set(ids)) == len(ids)
    assert all(len(message_id) == 32 and int(message_id, 16) >= 0 for message_id in ids)
