"""Customer import from CSV: validate every row first, then apply all of it or nothing.

Columns: ``external_ref,name,phone,plan,amount,currency,expires_on`` and optionally ``opted_out``
(true/false) and ``status`` (active/cancelled/suspended). Each customer has one subscription; importing
the same ``external_ref`` again updates it, and a new ``expires_on`` is a renewal (a new reminder cycle).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from tenant_worker.adapters import catalog
from tenant_worker.adapters.catalog import CustomerRecord, ImportCounts
from tenant_worker.adapters.phones import InvalidPhoneError, normalize_phone
from tenant_worker.domain.model import SubscriptionStatus, ValidationError

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
    """Parse a whole CSV into valid records and rejected rows; a bad header raises
    :class:`ValidationError` (no row can be read then)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise ValidationError(
            [f"line 1: missing column {column!r}" for column in missing]
            + [f"line 1: unknown column {column!r}" for column in unknown]
        )
    reader.fieldnames = header
    records: list[CustomerRecord] = []
    rejects: list[RejectedRow] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        raw = {key: value for key, value in row.items() if isinstance(key, str) and isinstance(value, str)}
        if None in row or any(value is None for value in row.values()):
            extra = row.get(None) or []
            found = sum(1 for key, value in row.items() if key is not None and value is not None) + len(extra)
            rejects.append(RejectedRow(line, f"expected {len(header)} fields, found {found}", raw))
            continue
        try:
            record = _parse_row({key: value.strip() for key, value in row.items()}, default_region)
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
    if not row["external_ref"] or len(row["external_ref"]) > 128:
        errors.append("external_ref must be 1-128 characters")
    if not row["name"]:
        errors.append("name is empty")
    if not row["plan"]:
        errors.append("plan is empty")
    phone = ""
    try:
        phone = normalize_phone(row["phone"], region)
    except InvalidPhoneError as exc:
        errors.append(str(exc))
    amount = Decimal(0)
    try:
        amount = Decimal(row["amount"])
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
    except InvalidOperation:
        errors.append(f"amount {row['amount']!r} must be a non-negative number with at most 2 decimals")
    currency = row["currency"].upper()
    if len(currency) != 3 or not currency.isalpha():
        errors.append(f"currency {row['currency']!r} must be a 3-letter ISO code")
    expires_on = dt.date.min
    try:
        expires_on = dt.date.fromisoformat(row["expires_on"])
    except ValueError:
        errors.append(f"expires_on {row['expires_on']!r} must be a date like 2026-12-31")
    opted_out = row.get("opted_out", "").lower()
    if opted_out not in _TRUE | _FALSE:
        errors.append(f"opted_out {row.get('opted_out')!r} must be true or false")
    status = row.get("status", "") or SubscriptionStatus.ACTIVE.value
    if status not in {s.value for s in SubscriptionStatus}:
        errors.append(f"status {status!r} must be one of active, cancelled, suspended")
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


def import_customers(
    session: Session, slug: str, lines: Iterable[str] | str, default_region: str | None = None
) -> ImportCounts:
    """Validate the whole file, then upsert it in the caller's transaction (all rows or none)."""
    text = lines if isinstance(lines, str) else "".join(lines)
    tenant = catalog.find_tenant(session, slug)
    records = parse_customers_csv(text, default_region)
    return catalog.TenantCatalog(session, tenant.id).upsert_customers(records)
