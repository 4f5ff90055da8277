"""`tenant-worker api-keys create|list|revoke` as an operator runs them: the key printed once, listings
without secrets, revocation by prefix, one-line errors, and no Redis needed."""

from __future__ import annotations

import json
import subprocess

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.domain.api_keys import looks_like_key
from tenant_worker.domain.ports import SYSTEM_CLOCK
from tenant_worker.services.api_keys import authenticate
from tests.conftest import BIN, free_port


def cli(env, *args):
    return subprocess.run(
        [str(BIN / "tenant-worker"), "api-keys", *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_create_list_and_revoke_a_key_without_redis(worker_env, sessions, make_tenant):
    env = {**worker_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    tenant = make_tenant()
    store = SqlApiKeyStore(sessions)

    text = ok(cli(env, "create", tenant.slug, "--name", "billing")).splitlines()
    created = json.loads(ok(cli(env, "create", tenant.slug, "--json")))
    key = text[0]
    assert looks_like_key(key) and "not shown again" in text[1]
    assert looks_like_key(created["key"]) and created["tenant"] == tenant.slug and created["active"] is True

    listing = ok(cli(env, "list", tenant.slug))
    listed = json.loads(ok(cli(env, "list", tenant.slug, "--json")))
    assert key[:12] in listing and "billing" in listing and key not in listing
    assert [k["prefix"] for k in listed] == [key[:12], created["prefix"]]
    assert "key" not in listed[0]

    assert f"revoked API key {key[:12]} of {tenant.slug}" in ok(cli(env, "revoke", key[:12]))
    assert authenticate(store, key, SYSTEM_CLOCK) is None
    assert authenticate(store, created["key"], SYSTEM_CLOCK) is not None
    assert json.loads(ok(cli(env, "list", "--json"))) != []


def test_unknown_tenant_or_prefix_is_a_one_line_error(worker_env):
    for args in (("create", "no-such-tenant"), ("revoke", "twk_NOSUCHKY"), ("list", "no-such-tenant")):
        result = cli(worker_env, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
