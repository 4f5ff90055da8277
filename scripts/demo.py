"""The main job, end to end on this machine's PostgreSQL and Redis, with SMS printed to the console.

Creates (once) a demo database, three tenants in different time zones with their templates and a few
dozen customers whose subscriptions expire over the next week; starts a real Celery worker; sweeps
every tenant; waits until everything due is sent; prints a summary per tenant and window, and one SMS
per language of the Belgian tenant, whose customers read Dutch or French (the CSV's locale column).
Running it again the same day prints the same totals and sends nothing new.

Environment: DEMO_DATABASE_URL (default: database tenant_worker_demo on 127.0.0.1:5432) and
REDIS_URL (default: redis://127.0.0.1:6379/1).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.db import session_factory, upgrade_database
from tenant_worker.adapters.orm import CustomerRow, ReminderRow, SubscriptionRow, TenantRow
from tenant_worker.bootstrap import Services, bootstrap
from tenant_worker.config import load_settings, redact_url
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec, ValidationError
from tenant_worker.services import customers, sweep, tenants

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_DB = "tenant_worker_demo"
# The demo runs whenever someone types `make demo`, so its tenants have no quiet hours (a real tenant's
# window defaults to 08:00-21:00 local and holds SMS back at night).
NO_QUIET_HOURS = SendingWindow(dt.time(0), dt.time(0))
TENANTS = [
    (
        TenantSpec(
            "northwind-fiber",
            "Northwind Fiber",
            "Europe/Amsterdam",
            "Northwind",
            "en",
            (5, 3, 1),
            sending_window=NO_QUIET_HOURS,
        ),
        "Hi {customer_name}, your {plan} plan with {org_name} expires on {expires_on}. "
        "Please pay {amount} within {days_left} {days_left|day|days} to stay online.",
        {1: "LAST REMINDER {customer_name}: {org_name} {plan} expires tomorrow ({expires_on}). Pay {amount}."},
        "+3161",
    ),
    (
        TenantSpec(
            "kiwi-broadband",
            "Kiwi Broadband",
            "Pacific/Auckland",
            "KiwiBB",
            "en",
            (5, 3, 1),
            sending_window=NO_QUIET_HOURS,
        ),
        "Kia ora {customer_name}! {org_name}: your {plan} subscription ends {expires_on} "
        "({days_left} {days_left|day|days}). Amount due: {amount}.",
        {},
        "+6421",
    ),
    (
        TenantSpec(
            "brussels-fiber",
            "Brussels Fiber",
            "Europe/Brussels",
            "BxlFiber",
            "nl_BE",
            (5, 3, 1),
            sending_window=NO_QUIET_HOURS,
        ),
        "Dag {customer_name}, uw {plan}-abonnement bij {org_name} verloopt op {expires_on}. "
        "Betaal {amount} binnen {days_left} {days_left|dag|dagen}.",
        {},
        "+3247",
    ),
]
# The Belgian tenant's French text: its customers with locale fr_BE read this one (nl_BE: the default).
LOCALE_TEMPLATES = {
    "brussels-fiber": {
        "fr": "Bonjour {customer_name}, votre abonnement {plan} chez {org_name} expire le {expires_on}. "
        "Veuillez payer {amount} d'ici {days_left} {days_left|jour|jours}."
    }
}
FIRST_NAMES = ["Anna", "Bram", "Chloe", "Daan", "Eva", "Femke", "Gijs", "Hana", "Ivo", "Jade", "Koen", "Lotte"]
PLANS = [("Fiber 100", "29.95"), ("Fiber 500", "44.50"), ("Fiber 1000", "59.00")]


def ensure_database(url: str) -> None:
    """Create the demo database on first run."""
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    upgrade_database(url)


def customers_csv(slug: str, prefix: str, today: dt.date) -> str:
    """Deterministic customers for one tenant: 18 subscriptions expiring over the next 7 days."""
    rng = random.Random(f"{slug}-{today.isoformat()}")
    lines = ["external_ref,name,phone,plan,amount,currency,expires_on,opted_out,locale"]
    for i in range(18):
        plan, amount = rng.choice(PLANS)
        number = f"{prefix}{rng.randrange(10**6, 10**7)}"
        expires = today + dt.timedelta(days=i % 8)
        name = f"{rng.choice(FIRST_NAMES)} {chr(65 + i)}."
        currency = "NZD" if prefix.startswith("+64") else "EUR"
        # Belgian customers alternate between Dutch and French; the others take their tenant's locale.
        locale = ("nl_BE", "fr_BE")[i % 2] if prefix.startswith("+32") else ""
        lines.append(f"{slug[:2]}-{i:03d},{name},{number},{plan},{amount},{currency},{expires},{i == 11},{locale}")
    return "\n".join(lines) + "\n"


def setup(services: Services) -> None:
    """Create the tenants, their templates and customers (idempotent)."""
    for spec, template, per_window, prefix in TENANTS:
        with services.uow() as tx:
            try:
                tx.catalog.find_tenant(spec.slug)
            except ValidationError:
                tenants.create_tenant(tx, spec, template, shard_count=services.settings.shard_count)
                for window, body in per_window.items():
                    tenants.save_template(tx, spec.slug, body, window)
                for locale, body in LOCALE_TEMPLATES.get(spec.slug, {}).items():
                    tenants.save_template(tx, spec.slug, body, locale=locale)
            today = tenants.local_today(spec.timezone)
            counts = customers.import_customers(tx, spec.slug, customers_csv(spec.slug, prefix, today))
        print(f"tenant {spec.slug} ({spec.timezone}, local date {today}): {counts}")


def summary(sessions: sessionmaker[Session], started: dt.datetime) -> None:
    """Print SMS per tenant and window: sent in total, sent by this run, skipped."""
    with sessions() as session:
        rows = session.execute(
            select(
                ReminderRow.tenant_id,
                ReminderRow.window_days,
                ReminderRow.status,
                func.count(),
                func.count().filter(ReminderRow.sent_at >= started),
            ).group_by(ReminderRow.tenant_id, ReminderRow.window_days, ReminderRow.status)
        ).all()
        names = {tenant_id: slug for tenant_id, slug in session.execute(select(TenantRow.id, TenantRow.slug))}
    table: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tenant_id, window, status, total, this_run in rows:
        cell = table[(names[tenant_id], window)]
        cell[status] += total
        cell["this_run"] += this_run if status == "sent" else 0
    print(f"\n{'TENANT':<18} {'WINDOW':>6} {'SENT':>5} {'THIS RUN':>8} {'SKIPPED':>7} {'OTHER':>5}")
    for (slug, window), cell in sorted(table.items(), key=lambda item: (item[0][0], -item[0][1])):
        other = sum(v for k, v in cell.items() if k not in ("sent", "skipped", "this_run"))
        print(f"{slug:<18} {window:>5}d {cell['sent']:>5} {cell['this_run']:>8} {cell['skipped']:>7} {other:>5}")


def languages(sessions: sessionmaker[Session], slug: str) -> None:
    """Print one SMS per customer language of tenant ``slug``: the same reminder, in two languages."""
    with sessions() as session:
        rows = session.execute(
            select(CustomerRow.locale, ReminderRow.body)
            .join(SubscriptionRow, SubscriptionRow.id == ReminderRow.subscription_id)
            .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
            .join(TenantRow, TenantRow.id == ReminderRow.tenant_id)
            .where(TenantRow.slug == slug, ReminderRow.status == "sent", ReminderRow.body.is_not(None))
            .order_by(ReminderRow.id)
        ).all()
    shown: dict[str | None, str] = {}
    for locale, body in rows:
        shown.setdefault(locale, body or "")
    print(f"\n{slug}: one SMS per customer language")
    for locale, body in sorted(shown.items(), key=lambda item: item[0] or ""):
        print(f"  [{locale or 'tenant default'}] {body}")


def main() -> int:
    """Run the demo."""
    database_url = os.environ.get("DEMO_DATABASE_URL", ADMIN_URL.rsplit("/", 1)[0] + f"/{DEMO_DB}")
    env = {**os.environ, "DATABASE_URL": database_url, "SMS_BACKEND": "console"}
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    settings = load_settings(env)
    print(f"demo database {redact_url(database_url)}, Redis {settings.redacted_redis_url}")
    ensure_database(database_url)
    sessions = session_factory(database_url)
    services = bootstrap(settings)
    setup(services)
    started = dt.datetime.now(dt.UTC)
    worker_bin = Path(sys.executable).parent / "tenant-worker"
    worker = subprocess.Popen(
        [str(worker_bin), "worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-mingle",
         "--without-gossip", "--hostname", f"demo-{os.getpid()}@%h"],
        env=env,
    )  # fmt: skip
    try:
        for slug in sweep.tenants_to_sweep(services.uow):
            report = sweep.sweep_tenant(services.uow, slug, services.queue, settings)
            print(f"sweep {slug} {report.local_date}: {report.claimed} claimed, {report.skipped} skipped, "
                  f"{report.enqueued + report.re_enqueued} enqueued")  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                open_rows = session.scalar(select(func.count()).where(ReminderRow.status.in_(["pending", "sending"])))
            if not open_rows or worker.poll() is not None:
                break
            time.sleep(0.3)
        else:
            print(f"warning: {open_rows} reminders still pending after 60 s", file=sys.stderr)
    finally:
        worker.terminate()
        worker.wait(30)
    summary(sessions, started)
    languages(sessions, "brussels-fiber")
    return 0


if __name__ == "__main__":
    sys.exit(main())
