"""The ``customers`` command handlers on fakes: the masked phone, the confirmation erasure asks for on
a terminal, and the refusal (status 1, nothing changed) while a reminder is being sent."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from tenant_worker import cli
from tenant_worker.bootstrap import bootstrap
from tenant_worker.cli_customers import mask_phone
from tenant_worker.config import load_settings
from tests.conftest import customer
from tests.fakes import FakeClock, FakeStorage

PHONE = "+31612345678"


@pytest.mark.parametrize(
    ("phone", "shown"), [(PHONE, "*********678"), ("+3161", "**161"), ("12", "12"), (None, "-"), ("", "-")]
)
def test_the_text_view_shows_only_the_last_3_digits_of_a_phone(phone: str | None, shown: str) -> None:
    assert mask_phone(phone) == shown


@pytest.fixture
def storage() -> FakeStorage:
    """Ada, with a reminder being sent right now."""
    fake = FakeStorage(FakeClock())
    tenant = fake.add_tenant("acme")
    fake.add_customers(tenant, [customer("ada", dt.date(2026, 3, 5), phone=PHONE, name="Ada Lovelace")])
    with fake() as tx:
        ledger = tx.ledger(tenant.id)
        [(reminder_id, _)] = ledger.claim_due_reminders(dt.date(2026, 3, 2), (5, 3, 1))
        ledger.start_sending([reminder_id])
    return fake


def run(storage: FakeStorage, *argv: str) -> int:
    args = cli.build_parser().parse_args(["customers", *argv])
    return int(args.handler(args, bootstrap(load_settings({}), uow=storage, clock=FakeClock())))


def test_erase_declined_on_a_terminal_changes_nothing(
    storage: FakeStorage, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", type("Tty", (io.StringIO,), {"isatty": lambda self: True})("n\n"))
    before = storage.tables.snapshot()
    assert run(storage, "erase", "acme", "ada") == 1
    out = capsys.readouterr().out
    assert "Erase customer ada of acme (1 subscriptions, 1 reminders)" in out and "nothing changed" in out
    assert storage.tables.snapshot() == before


def test_erase_while_a_reminder_is_being_sent_exits_1_having_changed_nothing(
    storage: FakeStorage, capsys: pytest.CaptureFixture[str]
) -> None:
    before = storage.tables.snapshot()
    assert run(storage, "erase", "acme", "ada", "--yes", "--wait", "3") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 1 reminders of customer ada of acme are still being sent after 3 s")
    assert "nothing was erased" in err and err.count("\n") == 1
    assert storage.tables.snapshot() == before


def test_show_text_masks_the_phone(storage: FakeStorage, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(storage, "show", "acme", "ada") == 0
    out = capsys.readouterr().out
    assert "*********678" in out and PHONE not in out and " sending " in out
