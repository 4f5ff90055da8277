"""The CLI as a platform engineer runs it: onboard -> import -> dry run -> sweep -> worker -> SMS arrive."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from tenant_worker.services.tenants import local_today
from tests.conftest import BIN, new_phone, unique_slug, wait_until


def cli(env, *args, check=True):
    result = subprocess.run([str(BIN / "tenant-worker"), *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_onboard_import_sweep_and_send_through_the_cli(worker_env, emulator, celery_worker, tmp_path):
    slug = unique_slug("cli")
    created = cli(
        worker_env, "tenant", "create", "--slug", slug, "--name", "Polder Net", "--timezone", "America/Santiago",
        "--originator", "PolderNet", "--windows", "1,3,5", "--sending-window", "00:00-00:00",
        "--template", "{org_name}: {customer_name}, {days_left} days left, pay {amount} {currency}", "--json",
    )  # fmt: skip
    assert json.loads(created.stdout)["windows"] == [5, 3, 1]

    today = local_today("America/Santiago")
    phones = [new_phone() for _ in range(3)]
    header = "external_ref,name,phone,plan,amount,currency,expires_on\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(header + f"a,Ann,{phones[0]},Basic,10,EUR,{today}\nb,Bob,12345,Basic,ten,EUR,{today}\n")
    refused = cli(worker_env, "customers", "import", slug, str(bad), check=False)
    assert refused.returncode == 2
    assert "line 3:" in refused.stderr and "amount 'ten'" in refused.stderr and "Traceback" not in refused.stderr

    good = tmp_path / "customers.csv"
    rows = [(f"r{i}", f"Name {i}", phone, today + dt.timedelta(days=days)) for i, (phone, days) in
            enumerate(zip(phones, [1, 3, 4], strict=True))]  # fmt: skip
    good.write_text(header + "".join(f"{r},{n},{p},Basic,10.00,EUR,{d}\n" for r, n, p, d in rows))
    assert "3 created" in cli(worker_env, "customers", "import", slug, str(good)).stdout

    preview = json.loads(cli(worker_env, "sweep", "--tenant", slug, "--dry-run", "--json").stdout)
    assert len(preview[0]["reminders"]) == 3
    assert json.loads(cli(worker_env, "reminders", "list", "--tenant", slug, "--json").stdout) == []

    [report] = json.loads(cli(worker_env, "sweep", "--tenant", slug, "--json").stdout)
    assert (report["claimed"], report["enqueued"]) == (3, 3)

    def all_sent():
        listed = json.loads(cli(worker_env, "reminders", "list", "--tenant", slug, "--json").stdout)
        return listed if listed and all(r["status"] == "sent" for r in listed) else None

    listed = wait_until(all_sent, 30, "the CLI-swept reminders to be sent")
    assert sorted(r["window_days"] for r in listed) == [1, 3, 5]
    received = {r.recipients[0]: r for r in emulator.accepted() if f"+{r.recipients[0]}" in phones}
    assert len(received) == 3
    # {amount} {currency} was saved as {amount}, which writes the currency as the tenant's locale (en) does.
    assert received[phones[0].lstrip("+")].body == "Polder Net: Name 0, 1 days left, pay €10.00"
    assert all(r.originator == "PolderNet" for r in received.values())

    [again] = json.loads(cli(worker_env, "sweep", "--tenant", slug, "--json").stdout)
    assert (again["claimed"], again["enqueued"], again["re_enqueued"]) == (0, 0, 0)


def test_unknown_tenant_and_bad_template_are_clear_errors(worker_env):
    unknown = cli(worker_env, "reminders", "list", "--tenant", "no-such-tenant", check=False)
    assert unknown.returncode == 2 and "unknown tenant 'no-such-tenant'" in unknown.stderr
    bad = cli(
        worker_env, "tenant", "create", "--slug", unique_slug(), "--name", "X", "--timezone", "Europe/Paris",
        "--originator", "X", "--template", "Hi {customer_name.__class__} {nope}", check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "{nope}" in bad.stderr and "Traceback" not in bad.stderr


def test_production_worker_and_beat_refuse_a_redis_without_credentials(worker_env):
    env = dict(worker_env, TENANT_WORKER_ENV="production", REDIS_URL="redis://127.0.0.1:6399/0")
    for command in ("worker", "beat"):
        refused = cli(env, command, check=False)
        assert refused.returncode == 2
        assert "refuses Redis without credentials" in refused.stderr and "REDIS_PASSWORD" in refused.stderr


def test_schedule_cli_shows_runs_across_a_dst_change_in_utc_and_local_time(worker_env):
    slug = unique_slug("sch")
    cli(worker_env, "tenant", "create", "--slug", slug, "--name", "Berlin Net", "--timezone", "Europe/Berlin",
        "--originator", "BerlinNet", "--send-time", "02:30", "--sending-window", "00:00-00:00")  # fmt: skip
    runs = json.loads(
        cli(worker_env, "schedule", "show", slug, "--from", "2026-03-28T12:00Z", "--count", "2", "--json").stdout
    )
    assert runs == [
        {"utc": "2026-03-29T01:00:00+00:00", "local": "2026-03-29T03:00:00+02:00"},
        {"utc": "2026-03-30T00:30:00+00:00", "local": "2026-03-30T02:30:00+02:00"},
    ]
    # `tenant create` scheduled it already: a sync finds nothing to do for it.
    synced = json.loads(cli(worker_env, "schedule", "sync", "--json").stdout)
    assert slug not in synced["created"] and slug not in synced["updated"]
    shown = json.loads(cli(worker_env, "schedule", "show", slug, "--json").stdout)
    assert shown["state"] == "active" and shown["in_sync"] and "T02:30" in shown["next_run_local"]
    assert json.loads(cli(worker_env, "schedule", "pause", slug, "--json").stdout)["state"] == "paused"
    listed = {s["tenant"]: s for s in json.loads(cli(worker_env, "schedule", "list", "--json").stdout)}
    assert listed[slug]["state"] == "paused"
    assert json.loads(cli(worker_env, "schedule", "remove", slug, "--json").stdout)["state"] == "removed"


def test_tenants_get_a_shard_or_a_dedicated_queue_and_can_be_moved(worker_env, redis_url):
    from tests.conftest import redis_db_url

    env = {**worker_env, "REDIS_URL": redis_db_url(redis_url, 13)}
    small, big = unique_slug("small"), unique_slug("big")
    common = ["--name", "N", "--timezone", "Europe/Amsterdam", "--originator", "Net", "--json"]
    shard = json.loads(cli(env, "tenant", "create", "--slug", small, *common).stdout)["queue"]
    assert shard.startswith("reminders.shard.") and 0 <= int(shard.rsplit(".", 1)[1]) < 16
    created = json.loads(cli(env, "tenant", "create", "--slug", big, "--dedicated", "--rate", "50", *common).stdout)
    assert (created["queue"], created["rate_per_second"]) == (f"reminders.tenant.{big}", 50.0)

    moved = json.loads(cli(env, "tenant", "move", small, "--shard", "15", "--json").stdout)
    assert (moved["old_queue"], moved["new_queue"]) == (shard, "reminders.shard.15")
    assert json.loads(cli(env, "tenant", "show", small, "--json").stdout)["queue"] == "reminders.shard.15"
    cli(env, "tenant", "move", small, "--dedicated")
    assert json.loads(cli(env, "tenant", "show", small, "--json").stdout)["queue"] == f"reminders.tenant.{small}"
    # The tenant's daily sweep entry follows it.
    assert json.loads(cli(env, "schedule", "show", small, "--json").stdout)["queue"] == f"reminders.tenant.{small}"

    for bad in (["--shard", "16"], ["--shard", "1", "--dedicated"], []):
        refused = cli(env, "tenant", "move", small, *bad, check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
    listed = {q["queue"]: q for q in json.loads(cli(env, "queues", "--json").stdout)["queues"]}
    assert listed[f"reminders.tenant.{big}"]["kind"] == "dedicated"
    assert listed["reminders.control"]["kind"] == "control"


def test_worker_refuses_a_tenant_without_a_dedicated_queue(worker_env):
    slug = unique_slug("shared")
    cli(worker_env, "tenant", "create", "--slug", slug, "--name", "N", "--timezone", "UTC", "--originator", "Net")
    refused = cli(worker_env, "worker", "--tenant", slug, check=False)
    assert refused.returncode == 2 and "tenant move" in refused.stderr
    bad = cli(worker_env, "worker", "--shards", "0-99", check=False)
    assert bad.returncode == 2 and "SHARD_COUNT is 16" in bad.stderr
