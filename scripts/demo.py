"""The main job, end to end on this machine's PostgreSQL and Redis, through the MessageBird emulator.

Creates (once) a demo database, three tenants in different time zones with their templates and a few
dozen customers whose subscriptions expire over the next week; starts the MessageBird emulator, the
HTTP API (which receives the emulator's signed status reports) and a real Celery worker; sweeps
every tenant; waits until everything due is sent and MessageBird has reported on it (a tenth of the
SMS fail to be delivered, reports come late and twice); prints a few SMS and a summary per tenant and
window, with the delivered counts, and one SMS per language of the Belgian tenant, whose customers read
Dutch or French (the CSV's locale column). Running it again the same day sends nothing new.

Environment: DEMO_DATABASE_URL (default: database tenant_worker_demo on 127.0.0.1:5432) and
REDIS_URL (default: redis://127.0.0.1:6379/1).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psycopg
from bench_common import free_port
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.db import session_factory, upgrade_database
from tenant_worker.adapters.orm import CustomerRow, ReminderRow, SubscriptionRow, TenantRow
from tenant_worker.bootstrap import Services, bootstrap
from tenant_worker.config import load_settings, redact_url
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec, ValidationError
from tenant_worker.services import customers, sweep, tenants
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator, ReportPolicy

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
                func.count().filter(ReminderRow.delivery_status == "delivered"),
                func.count().filter(ReminderRow.delivery_status.in_(["delivery_failed", "expired"])),
            ).group_by(ReminderRow.tenant_id, ReminderRow.window_days, ReminderRow.status)
        ).all()
        names = {tenant_id: slug for tenant_id, slug in session.execute(select(TenantRow.id, TenantRow.slug))}
    table: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    extra = ("this_run", "delivered", "undelivered")
    for tenant_id, window, status, total, this_run, delivered, undelivered in rows:
        cell = table[(names[tenant_id], window)]
        cell[status] += total
        cell["this_run"] += this_run if status == "sent" else 0
        cell["delivered"] += delivered
        cell["undelivered"] += undelivered
    print(
        f"\n{'TENANT':<18} {'WINDOW':>6} {'SENT':>5} {'THIS RUN':>8} {'DELIVERED':>9} {'FAILED':>6} "
        f"{'SKIPPED':>7} {'OTHER':>5}"
    )
    for (slug, window), cell in sorted(table.items(), key=lambda item: (item[0][0], -item[0][1])):
        other = sum(v for k, v in cell.items() if k not in ("sent", "skipped", *extra))
        print(
            f"{slug:<18} {window:>5}d {cell['sent']:>5} {cell['this_run']:>8} {cell['delivered']:>9} "
            f"{cell['undelivered']:>6} {cell['skipped']:>7} {other:>5}"
        )


def wait_for_reports(sessions: sessionmaker[Session], started: dt.datetime, timeout: float = 20.0) -> None:
    """Wait until every SMS sent by this run has its final status report (the loop closed)."""
    final = ["delivered", "delivery_failed", "expired"]
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            waiting = session.scalar(
                select(func.count()).where(
                    ReminderRow.sent_at >= started,
                    ReminderRow.delivery_status.is_(None) | ReminderRow.delivery_status.not_in(final),
                )
            )
        if not waiting:
            return
        if time.monotonic() > deadline:
            print(f"warning: {waiting} SMS still without a final status report", file=sys.stderr)
            return
        time.sleep(0.3)


def show_some(emulator: MessageBirdEmulator, count: int = 3) -> None:
    """A few of the SMS that went out, as MessageBird received them."""
    for record in emulator.accepted()[:count]:
        print(f"--- SMS to +{record.recipients[0]} from {record.originator} (reference {record.reference})")
        print(record.body)


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
    access_key, signing_key = secrets.token_hex(16), secrets.token_hex(32)
    # A tenth of the SMS fail to be delivered; every report comes late, its final status twice.
    policy = ReportPolicy(signing_key, delay=0.5, duplicates=1, failure_share=0.1, seed=7)
    emulator = MessageBirdEmulator(access_key=access_key, reports=policy).start()
    api_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMS_BACKEND": "messagebird",
        "MESSAGEBIRD_ACCESS_KEY": access_key,
        "MESSAGEBIRD_ENDPOINT": emulator.url,
        "MESSAGEBIRD_SIGNING_KEY": signing_key,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
    }
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    settings = load_settings(env)
    print(f"demo database {redact_url(database_url)}, Redis {settings.redacted_redis_url}")
    print(f"MessageBird emulator {emulator.url}; status reports to {settings.report_url}")
    ensure_database(database_url)
    sessions = session_factory(database_url)
    services = bootstrap(settings)
    setup(services)
    started = dt.datetime.now(dt.UTC)
    tw = str(Path(sys.executable).parent / "tenant-worker")
    api = subprocess.Popen([tw, "api", "--port", str(api_port), "--log-level", "warning"], env=env)
    worker = subprocess.Popen(
        [tw, "worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-mingle",
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
        wait_for_reports(sessions, started)
    finally:
        worker.terminate()
        worker.wait(30)
        api.terminate()
        api.wait(30)
        emulator.stop()
    show_some(emulator)
    summary(sessions, started)
    languages(sessions, "brussels-fiber")
    return 0


if __name__ == "__main__":
    sys.exit(main())
