"""The HTTP API's pure helpers: reading the bearer token, what makes two requests "the same" for
``Idempotency-Key``, the key's shape, and the caller's scopes."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_worker.api.auth import Principal, bearer_token
from tenant_worker.api.idempotency import fingerprint
from tenant_worker.domain.api_keys import looks_like_key, prefix_of
from tenant_worker.services.api_keys import new_key_text


def scope(method: str = "POST", path: str = "/v1/x", query: bytes = b"", **headers: str) -> dict[str, Any]:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": raw}


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("abc", None),
        ("", None),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(header: str, token: str | None) -> None:
    assert bearer_token(scope(authorization=header)) == token


def test_no_authorization_header_means_no_token() -> None:
    assert bearer_token(scope()) is None


def test_the_same_request_has_the_same_fingerprint_and_any_difference_changes_it() -> None:
    base = fingerprint(scope(), b'{"a": 1}')
    assert fingerprint(scope(), b'{"a": 1}') == base
    different = [
        fingerprint(scope(method="PUT"), b'{"a": 1}'),
        fingerprint(scope(path="/v1/y"), b'{"a": 1}'),
        fingerprint(scope(query=b"purge=true"), b'{"a": 1}'),
        fingerprint(scope(), b'{"a": 2}'),
        fingerprint(scope(), b""),
    ]
    assert base not in different and len(set(different)) == len(different)


def test_fingerprint_parts_cannot_run_into_each_other() -> None:
    assert fingerprint(scope(path="/v1/ab"), b"c") != fingerprint(scope(path="/v1/a"), b"bc")


def test_new_keys_have_the_documented_shape() -> None:
    for _ in range(100):
        key = new_key_text()
        assert looks_like_key(key) and prefix_of(key) == key[:12] and key[12] == "_"


@pytest.mark.parametrize(
    "text",
    ["", "twk_", "twk_short_" + "x" * 43, "twk_AAAAAAAA" + "x" * 43, "xyz_AAAAAAAA_" + "x" * 43, "twk_AAAAAAAA_x"],
)
def test_text_of_another_shape_is_not_a_key(text: str) -> None:
    assert not looks_like_key(text)


def test_tenant_keys_share_their_tenant_s_idempotency_scope_and_admin_keys_have_their_own() -> None:
    a1, a2 = Principal("twk_AAAAAAA1", tenant_id=7), Principal("twk_AAAAAAA2", tenant_id=7)
    admin = Principal("admin:0123456789abcdef")
    assert a1.idempotency_scope == a2.idempotency_scope == "tenant:7"
    assert admin.admin and not a1.admin
    assert admin.idempotency_scope == "admin:0123456789abcdef"
