"""Customer import from CSV: validate every row first, then apply all of it or nothing.

Columns: ``external_ref,name,phone,plan,amount,currency,expires_on`` and optionally ``opted_out``
(true/false) and ``status`` (active/cancelled/suspended). Each customer has one subscription; importing
the same ``external_ref`` again updates it, and a new ``expires_on`` is a renewal (a new reminder cycle).

Every value is bounded (a name at most 100 characters, a plan 50, an external_ref 128, an amount what
NUMERIC(12, 2) holds: ``domain.sms_limits``), so no row can turn into a 66-segment SMS or a database
error; a longer value rejects its row, with the line number. File-level limits (size, encoding, NUL
bytes, a field over 64 KiB) are ``adapters.csv_files``'.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tenant_worker.adapters import csv_files
from tenant_worker.adapters.phones import InvalidPhoneError, normalize_phone
from tenant_worker.domain.model import SubscriptionStatus, ValidationError
from tenant_worker.domain.records import CustomerRecord, ImportCounts
from tenant_worker.domain.sms_limits import MAX_AMOUNT, MAX_CUSTOMER_NAME_CHARS, MAX_EXTERNAL_REF_CHARS, MAX_PLAN_CHARS
from tenant_worker.domain.storage import UnitOfWork

REQUIRED_COLUMNS = ("external_ref", "name", "phone", "plan", "amount", "currency", "expires_on")
OPTIONAL_COLUMNS = ("opted_out", "status")
_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n", ""}


@dataclass(frozen=True)
class RejectedRow:
    """A CSV row that cannot be imported, with its line number and every reason."""

    line: int
    reason: str
    raw: dict[str, str]


def parse_customers_rows(
    text: str, default_region: str | None = None
) -> tuple[list[CustomerRecord], list[RejectedRow]]:
    """Parse a whole CSV into valid records and rejected rows.

    What makes the file as a whole unreadable (a bad header, a NUL byte, a field over
    ``csv_files.MAX_FIELD_CHARS``) raises :class:`ValidationError` naming the line: no row is
    returned then, so nothing can be half-imported.
    """
    rows = csv_files.read_rows(text)
    first = next(rows, None)
    header = [name.strip() for name in first[1]] if first else []
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise ValidationError(
            [f"line 1: missing column {column!r}" for column in missing]
            + [f"line 1: unknown column {column!r}" for column in unknown]
        )
    records: list[CustomerRecord] = []
    rejects: list[RejectedRow] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        raw = dict(zip(header, cells, strict=False))
        if len(cells) != len(header):
            rejects.append(RejectedRow(line, f"expected {len(header)} fields, found {len(cells)}", raw))
            continue
        try:
            record = _parse_row({key: value.strip() for key, value in raw.items()}, default_region)
        except ValueError as exc:
            rejects.append(RejectedRow(line, str(exc), raw))
            continue
        if record.external_ref in first_line:
            reason = f"external_ref {record.external_ref!r} repeats line {first_line[record.external_ref]}"
            rejects.append(RejectedRow(line, reason, raw))
            continue
        first_line[record.external_ref] = line
        records.append(record)
    return records, rejects


def parse_customers_csv(text: str, default_region: str | None = None) -> list[CustomerRecord]:
    """Parse and validate a whole CSV; raise :class:`ValidationError` listing every bad row by line."""
    records, rejects = parse_customers_rows(text, default_region)
    if rejects:
        raise ValidationError([f"line {r.line}: {r.reason}" for r in rejects])
    return records


def _parse_row(row: dict[str, str], region: str | None) -> CustomerRecord:
    errors: list[str] = []
    if not row["external_ref"] or len(row["external_ref"]) > MAX_EXTERNAL_REF_CHARS:
        errors.append(f"external_ref must be 1-{MAX_EXTERNAL_REF_CHARS} characters")
    errors += _text_problems("name", row["name"], MAX_CUSTOMER_NAME_CHARS)
    errors += _text_problems("plan", row["plan"], MAX_PLAN_CHARS)
    phone = ""
    try:
        phone = normalize_phone(row["phone"], region)
    except InvalidPhoneError as exc:
        errors.append(str(exc))
    amount = Decimal(0)
    try:
        amount = Decimal(row["amount"])
        if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
    except InvalidOperation:
        errors.append(f"amount {_shown(row['amount'])} must be a number from 0 to {MAX_AMOUNT} with at most 2 decimals")
    currency = row["currency"].upper()
    if len(currency) != 3 or not (currency.isascii() and currency.isalpha()):
        errors.append(f"currency {_shown(row['currency'])} must be a 3-letter ISO code")
    expires_on = dt.date.min
    try:
        expires_on = dt.date.fromisoformat(row["expires_on"])
    except ValueError:
        errors.append(f"expires_on {_shown(row['expires_on'])} must be a date like 2026-12-31")
    opted_out = row.get("opted_out", "").lower()
    if opted_out not in _TRUE | _FALSE:
        errors.append(f"opted_out {_shown(row.get('opted_out', ''))} must be true or false")
    status = row.get("status", "") or SubscriptionStatus.ACTIVE.value
    if status not in {s.value for s in SubscriptionStatus}:
        errors.append(f"status {_shown(status)} must be one of active, cancelled, suspended")
    if errors:
        raise ValueError("; ".join(errors))
    return CustomerRecord(
        row["external_ref"],
        row["name"],
        phone,
        row["plan"],
        amount,
        currency,
        expires_on,
        opted_out in _TRUE,
        status,
    )


def _text_problems(column: str, value: str, limit: int) -> list[str]:
    if not value:
        return [f"{column} is empty"]
    if len(value) > limit:
        return [f"{column} is {len(value):,} characters long; the limit is {limit}"]
    return []


def _shown(value: str) -> str:
    """A cell quoted in an error message, cut short: the message must stay one readable line."""
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def import_customers(
    uow: UnitOfWork, slug: str, lines: Iterable[str] | str, default_region: str | None = None
) -> ImportCounts:
    """Validate the whole file, then upsert it in the caller's transaction (all rows or none)."""
    text = lines if isinstance(lines, str) else "".join(lines)
    tenant = uow.catalog.find_tenant(slug)
    records = parse_customers_csv(text, default_region)
    return uow.catalog.upsert_customers(tenant.id, records)
