"""Onboarding from TOML/YAML on real PostgreSQL and Redis: all or nothing, idempotent, with rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenant_worker.adapters.orm import CustomerRow, SmsTemplateRow, TenantRow
from tenant_worker.adapters.redbeat import RedBeatStore
from tenant_worker.celery_app import create_app
from tests.conftest import new_phone, unique_slug

ROOT = Path(__file__).resolve().parents[2]


def definition(slug: str, **overrides: str) -> str:
    fields = {
        "slug": f'"{slug}"', "name": '"Acme Fiber"', "timezone": '"Australia/Adelaide"', "locale": '"en"',
        "originator": '"AcmeFiber"', "send_time": '"09:30"', "sending_window": '"08:00-21:00"',
        "windows": "[5, 3, 1]", "queue": '"dedicated"',
    }  # fmt: skip
    fields.update(overrides)
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    return body + '\n\n[[templates]]\nbody = "Hi {customer_name}, {days_left} days left."\n'


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "scripts" / "onboard_tenant.py"), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if "--json" in args:
        assert result.stdout.startswith("{"), result.stderr[-2000:]
    return result


def customers_csv(path: Path, bad_rows: int = 0) -> Path:
    lines = ["external_ref,name,phone,plan,amount,currency,expires_on"]
    lines += [f"c{i},Customer {i},{new_phone()},Fiber,29.95,EUR,2026-12-0{1 + i % 9}" for i in range(450)]
    lines += [f"bad{i},Bad {i},12,Fiber,abc,EUR,2026-13-01" for i in range(bad_rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count(sessions, model, slug: str) -> int:
    with sessions() as session:
        tenant = session.scalars(select(TenantRow).where(TenantRow.slug == slug)).first()
        if tenant is None:
            return -1
        return int(session.scalar(select(func.count()).where(model.tenant_id == tenant.id)) or 0)


@pytest.fixture
def store(settings) -> RedBeatStore:
    return RedBeatStore(create_app(settings))


def test_onboarding_creates_tenant_customers_and_schedule_then_changes_nothing_on_rerun(
    worker_env, sessions, store, tmp_path
):
    slug = unique_slug("onb")
    file = tmp_path / "acme.toml"
    file.write_text(definition(slug))
    csv = customers_csv(tmp_path / "customers.csv")
    first = run(worker_env, str(file), "--customers", str(csv), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["created"] and report["customers"]["created"] == 450 and report["schedule"] == "created"
    assert report["next_run_local"][11:16] == "09:30" and report["next_run_local"].endswith(("+10:30", "+09:30"))
    assert "customers" in first.stderr  # the progress bar
    stored = store.get(slug)
    assert (stored.timezone, stored.send_time.isoformat()) == ("Australia/Adelaide", "09:30:00")
    with sessions() as session:
        tenant = session.scalars(select(TenantRow).where(TenantRow.slug == slug)).one()
        assert (tenant.queue, str(tenant.window_start), str(tenant.window_end)) == (
            f"reminders.tenant.{slug}",
            "08:00:00",
            "21:00:00",
        )

    again = json.loads(run(worker_env, str(file), "--customers", str(csv), "--json").stdout)
    assert (again["created"], again["changes"], again["schedule"]) == (False, [], "unchanged")
    assert again["customers"]["unchanged"] == 450

    file.write_text(definition(slug, send_time='"10:15"', name='"Acme Fibre"'))
    dry = json.loads(run(worker_env, str(file), "--dry-run", "--json").stdout)
    assert sorted(c.split(":")[0] for c in dry["changes"]) == ["name", "send_time"] and dry["schedule"] == "update"
    assert store.get(slug).send_time.isoformat() == "09:30:00"  # a dry run writes nothing
    changed = json.loads(run(worker_env, str(file), "--json").stdout)
    assert changed["schedule"] == "updated" and store.get(slug).send_time.isoformat() == "10:15:00"


def test_a_broken_definition_lists_every_problem_and_writes_nothing(worker_env, sessions, store, tmp_path):
    slug = unique_slug("bad")
    file = tmp_path / "bad.toml"
    file.write_text(
        definition(slug, timezone='"Mars/Olympus"', originator='"Way Too Long Sender"', send_time='"25:00"')
        + '\n[[templates]]\nbody = "Hi {customer_nam}"\nwindow = 7\n'
    )
    result = run(worker_env, str(file), "--customers", str(customers_csv(tmp_path / "c.csv", bad_rows=2)))
    assert result.returncode == 2
    for problem in ("Mars/Olympus", "originator", "25:00", "customer_nam", "window 7"):
        assert problem in result.stderr, problem
    assert count(sessions, CustomerRow, slug) == -1 and store.get(slug) is None


def test_bad_csv_rows_abort_by_default_and_are_written_to_a_rejects_file(worker_env, sessions, store, tmp_path):
    slug = unique_slug("rej")
    file = tmp_path / "t.yaml"
    file.write_text(
        f"slug: {slug}\nname: Kiwi\ntimezone: Pacific/Auckland\noriginator: KiwiBB\n"
        "templates:\n  - body: 'Hi {customer_name}'\n  - body: 'Kia ora {customer_name}'\n    locale: mi\n"
    )
    csv = customers_csv(tmp_path / "kiwi.csv", bad_rows=3)
    refused = run(worker_env, str(file), "--customers", str(csv))
    assert refused.returncode == 2 and "nothing was imported" in refused.stderr
    rejects = (tmp_path / "kiwi.rejects.csv").read_text().splitlines()
    assert len(rejects) == 4 and rejects[0].startswith("line,reason") and "amount" in rejects[1]
    assert count(sessions, CustomerRow, slug) == -1 and store.get(slug) is None

    accepted = run(worker_env, str(file), "--customers", str(csv), "--allow-rejects", "--json")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["rejected"] == 3
    assert count(sessions, CustomerRow, slug) == 450 and count(sessions, SmsTemplateRow, slug) == 2


def test_offboarding_removes_the_schedule_and_purge_deletes_the_data(worker_env, sessions, store, tmp_path):
    slug = unique_slug("off")
    file = tmp_path / "off.toml"
    file.write_text(definition(slug))
    assert run(worker_env, str(file), "--customers", str(customers_csv(tmp_path / "c.csv"))).returncode == 0
    cli = [str(Path(sys.executable).parent / "tenant-worker"), "tenant", "offboard", slug, "--json"]
    kept = subprocess.run(cli, env=worker_env, capture_output=True, text=True, timeout=120)
    assert kept.returncode == 0, kept.stderr
    assert store.get(slug) is None and count(sessions, CustomerRow, slug) == 450
    purged = subprocess.run([*cli, "--purge"], env=worker_env, capture_output=True, text=True, timeout=120)
    assert json.loads(purged.stdout)["purged"] and count(sessions, CustomerRow, slug) == -1
