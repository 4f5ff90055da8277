"""Customer import and sync: validate rows as they stream in, stage them, then apply all or nothing.

Columns: ``external_ref,name,phone,plan,amount,currency,expires_on`` and optionally ``opted_out``
(true/false), ``status`` (active/cancelled/suspended), ``subscription_ref`` (the subscription among
the customer's; empty: the customer's one subscription) and ``locale`` (the customer's CLDR locale,
``fr_BE`` or ``fr-BE``; empty: the tenant's). Importing the same keys again updates them,
and a new ``expires_on`` is a renewal (a new reminder cycle).

Every value is bounded (a name at most 100 characters, a plan 50, an external_ref 128, an amount what
NUMERIC(12, 2) holds: ``domain.sms_limits``), so no row can turn into a 66-segment SMS or a database
error; a longer value rejects its row, with the line number. File-level limits (size, encoding, NUL
bytes, a field over 64 KiB) are ``adapters.csv_files``'.

:func:`sync_customers` is the use case (the CLI, onboarding and the HTTP API call it): it takes rows,
not a file, validates them in chunks of :data:`CHUNK_ROWS` (memory stays one chunk, whatever the
size) and hands them to ``Catalog.import_rows`` inside the caller's unit of work. By default any
rejected row refuses the whole import (:class:`ImportRefused`, nothing written); a full sync refuses
when it would remove more than the guard allows (default :data:`DEFAULT_MAX_REMOVALS_PERCENT` % of the
tenant's subscriptions); a dry run reports and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from tenant_worker.adapters import csv_files
from tenant_worker.adapters.cldr import UnknownLocale, canonical_locale
from tenant_worker.adapters.phones import InvalidPhoneError, normalize_phone
from tenant_worker.domain.model import SubscriptionStatus, ValidationError
from tenant_worker.domain.records import CustomerRecord, ImportChunk, ImportCounts, ImportPlan, ImportRow, KeptRow
from tenant_worker.domain.sms_limits import MAX_AMOUNT, MAX_CUSTOMER_NAME_CHARS, MAX_EXTERNAL_REF_CHARS, MAX_PLAN_CHARS
from tenant_worker.domain.storage import UnitOfWork

REQUIRED_COLUMNS = ("external_ref", "name", "phone", "plan", "amount", "currency", "expires_on")
OPTIONAL_COLUMNS = ("opted_out", "status", "subscription_ref", "locale")
# Rows validated and staged at a time: enough for COPY to stream at full speed, small in memory.
CHUNK_ROWS = 5000
# A full sync removing more than this share of the tenant's subscriptions is refused unless the
# caller allows more: a truncated or wrong file must not take a tenant's customers away.
DEFAULT_MAX_REMOVALS_PERCENT = 10.0
_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n", ""}
_BOOLEANS = _TRUE | _FALSE
_STATUSES = frozenset(s.value for s in SubscriptionStatus)
# The version of the rules that turn a row's cells into a record, part of its source digest: change
# it with any rule (validation, normalisation) so that rows validated by the old rules are again.
_RULES_VERSION = "2"  # 2: the locale column


@dataclass(frozen=True)
class RejectedRow:
    """A CSV row that cannot be imported, with its line number and every reason."""

    line: int
    reason: str
    raw: dict[str, str]


def parse_customers_rows(
    text: str, default_region: str | None = None
) -> tuple[list[CustomerRecord], list[RejectedRow]]:
    """Parse a whole CSV into valid records and rejected rows (a repeated ``external_ref`` with no
    ``subscription_ref`` too).

    What makes the file as a whole unreadable (a bad header, a NUL byte, a field over
    ``csv_files.MAX_FIELD_CHARS``) raises :class:`ValidationError` naming the line: no row is
    returned then, so nothing can be half-imported.
    """
    records: list[CustomerRecord] = []
    rejects: list[RejectedRow] = []
    first_line: dict[tuple[str, str | None], int] = {}
    for item in validated_rows(source_rows(csv_files.read_rows(text)), default_region):
        if isinstance(item, RejectedRow):
            rejects.append(item)
            continue
        line, record = item
        key = (record.external_ref, record.subscription_ref)
        if key in first_line:
            shown = record.external_ref + ("" if record.subscription_ref is None else f"/{record.subscription_ref}")
            rejects.append(RejectedRow(line, f"external_ref {shown!r} repeats line {first_line[key]}", {}))
            continue
        first_line[key] = line
        records.append(record)
    return records, rejects


class SourceRow(NamedTuple):
    """One row as read (a CSV record, an API item): its line, its columns and cells (in the same order),
    and what makes it unusable before any cell is looked at (a wrong number of fields), if anything. A
    named tuple, not a frozen dataclass: one is made per row, and it is three times cheaper to make.
    The cells by column (``raw``) are made only for a row that is validated: a re-import recognises
    most rows by their digest alone, and a dict per row cost it 1.3 s per 1,000,000 rows."""

    line: int
    columns: tuple[str, ...]
    cells: Sequence[str]
    problem: str | None = None

    @classmethod
    def of(cls, line: int, raw: dict[str, str]) -> SourceRow:
        """The row of ``raw``'s cells by column (an API item)."""
        return cls(line, tuple(raw), tuple(raw.values()))

    @property
    def raw(self) -> dict[str, str]:
        """The cells by column (a short row lacks its last columns)."""
        return dict(zip(self.columns, self.cells, strict=False))


def source_rows(rows: Iterator[tuple[int, list[str]]]) -> Iterator[SourceRow]:
    """The rows of a CSV read by ``csv_files`` (its header first) as :class:`SourceRow`; a header
    missing a column or naming an unknown one is a :class:`ValidationError` for line 1."""
    first = next(rows, None)
    header = tuple(name.strip() for name in first[1]) if first else ()
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise ValidationError(
            [f"line 1: missing column {column!r}" for column in missing]
            + [f"line 1: unknown column {column!r}" for column in unknown]
        )
    width = len(header)
    for line, cells in rows:
        if len(cells) == width:
            yield SourceRow(line, header, cells)
        else:
            yield SourceRow(line, header, cells, f"expected {width} fields, found {len(cells)}")


def validated_rows(rows: Iterable[SourceRow], region: str | None) -> Iterator[ImportRow | RejectedRow]:
    """Each row validated: ``(line, record)``, or a :class:`RejectedRow` with every reason."""
    for row in rows:
        if row.problem is not None:
            yield RejectedRow(row.line, row.problem, row.raw)
            continue
        try:
            yield row.line, _parse_row({key: value.strip() for key, value in row.raw.items()}, region)
        except (ValueError, KeyError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"missing column {exc.args[0]!r}"
            yield RejectedRow(row.line, reason, row.raw)


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
    phone, problem = _phone(row["phone"], region)
    if problem:
        errors.append(problem)
    subscription_ref = row.get("subscription_ref", "") or None
    if subscription_ref is not None and len(subscription_ref) > MAX_EXTERNAL_REF_CHARS:
        errors.append(f"subscription_ref must be at most {MAX_EXTERNAL_REF_CHARS} characters")
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
    if opted_out not in _BOOLEANS:
        errors.append(f"opted_out {_shown(row.get('opted_out', ''))} must be true or false")
    status = row.get("status", "") or SubscriptionStatus.ACTIVE.value
    if status not in _STATUSES:
        errors.append(f"status {_shown(status)} must be one of active, cancelled, suspended")
    locale, problem = _locale(row.get("locale", "").strip())
    if problem:
        errors.append(problem)
    if errors:
        raise ValueError("; ".join(errors))
    return CustomerRecord(
        row["external_ref"], row["name"], phone, row["plan"], amount, currency, expires_on, opted_out in _TRUE,
        status, subscription_ref, locale,
    )  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _locale(raw: str) -> tuple[str | None, str | None]:
    """The canonical CLDR locale of ``raw`` (None when empty) or why it is not one; files repeat a few."""
    if not raw:
        return None, None
    try:
        return canonical_locale(raw), None
    except UnknownLocale:
        return None, f"locale {_shown(raw)} must be a CLDR locale such as nl_NL, fr_BE or en"


@functools.lru_cache(maxsize=65536)
def _phone(raw: str, region: str | None) -> tuple[str, str | None]:
    """The E.164 form of ``raw`` or why it has none, cached per distinct value: a number not written
    in E.164 costs ~27 us to parse, more than the rest of a row's validation, and files repeat numbers."""
    try:
        return normalize_phone(raw, region), None
    except InvalidPhoneError as exc:
        return "", str(exc)


def _text_problems(column: str, value: str, limit: int) -> list[str]:
    if not value:
        return [f"{column} is empty"]
    if len(value) > limit:
        return [f"{column} is {len(value):,} characters long; the limit is {limit}"]
    return []


def _shown(value: str) -> str:
    """A cell quoted in an error message, cut short: the message must stay one readable line."""
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


@dataclass(frozen=True)
class ImportOptions:
    """How :func:`sync_customers` treats the rows.

    ``full_sync``: the rows are all the tenant's customers; the others are removed, refused beyond
    ``max_removals`` subscriptions or ``max_removals_percent`` % of the active ones (``None``: no
    bound of that kind). ``allow_rejects``: import the valid rows when some are rejected.
    ``dry_run``: report, write nothing."""

    full_sync: bool = False
    max_removals: int | None = None
    max_removals_percent: float | None = DEFAULT_MAX_REMOVALS_PERCENT
    allow_rejects: bool = False
    dry_run: bool = False
    region: str | None = None
    chunk_rows: int = CHUNK_ROWS


@dataclass
class ImportReport:
    """What an import did (a dry run: would do); ``samples`` holds the first rows of each kind."""

    tenant: str
    counts: ImportCounts
    rows: int
    rejects: list[RejectedRow] = field(default_factory=list)
    samples: dict[str, list[str]] = field(default_factory=dict)
    active_before: int = 0
    full_sync: bool = False
    dry_run: bool = False
    applied: bool = False

    @property
    def rejected(self) -> int:
        """How many rows were rejected."""
        return len(self.rejects)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (reject lines and reasons, not their cells)."""
        return {
            "tenant": self.tenant,
            **asdict(self.counts),
            "rejected": self.rejected,
            "rows": self.rows,
            "active_before": self.active_before,
            "full_sync": self.full_sync,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "samples": self.samples,
            "rejects": [{"line": r.line, "reason": r.reason} for r in self.rejects[:100]],
        }


class ImportRefused(ValidationError):
    """The import wrote nothing: rows were rejected (without ``allow_rejects``) or a full sync
    would remove more than allowed. ``report`` says what it would have done."""

    def __init__(self, problems: list[str], report: ImportReport) -> None:
        super().__init__(problems)
        self.report = report


def sync_customers(
    tx: UnitOfWork,
    slug: str,
    rows: Iterable[SourceRow],
    options: ImportOptions = ImportOptions(),
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate ``rows`` chunk by chunk, stage and plan them, and apply the plan in ``tx`` unless
    refused (:class:`ImportRefused`) or a dry run. ``progress`` gets the number of rows read every
    ``chunk_rows`` rows and at the end. All or nothing: the caller's unit of work is the transaction.

    A row whose digest is one of ``Catalog.unchanged_digests`` is not validated. It is kept as three
    integers until the file is read; then those of a customer with staged rows go to the catalog as
    ``kept`` rows (checked with them) and the others as ``unchanged`` digests."""
    tenant = tx.catalog.find_tenant(slug)
    # A small batch (an HTTP request's 1,000 rows) is validated whole: reading the digests of every
    # row the tenant has would cost more than validating the batch, and grow with the tenant.
    small = isinstance(rows, Sequence) and len(rows) <= options.chunk_rows
    unchanged = set() if small else tx.catalog.unchanged_digests(tenant.id)
    rejects: list[RejectedRow] = []
    read = 0

    def chunks() -> Iterator[ImportChunk]:
        nonlocal read
        staged: list[SourceRow] = []
        digests: list[int] = []
        # hash() of each staged row's customer_ref, when rows can be kept (a first import keeps none).
        staged_refs: set[int] | None = set() if unchanged else None
        kept = _KeptRows()
        digest_of = _Digests(options.region)
        for row in rows:
            read += 1
            digest = digest_of(row)
            if digest in unchanged and row.problem is None:
                # Recognised once: a repeat of the row is not in the set any more, so it is validated
                # and staged, and the kept one is then checked with it (a repeated key is rejected).
                unchanged.remove(digest)
                kept.add(row, digest)
            else:
                staged.append(row)
                digests.append(digest)
                if len(staged) >= options.chunk_rows:
                    yield _chunk(staged, digests, options.region, rejects, staged_refs)
                    staged, digests = [], []
            if progress is not None and read % options.chunk_rows == 0:
                progress(read)
        last = _chunk(staged, digests, options.region, rejects, staged_refs)  # its customers too, first
        checked, rest = kept.split(staged_refs or set())
        yield replace(last, kept=checked, unchanged=rest)
        if progress is not None:
            progress(read)

    refusal: list[str] = []

    def approve(plan: ImportPlan) -> bool:
        rejects.extend(RejectedRow(line, reason, {}) for line, reason in plan.rejects)
        rejects.sort(key=lambda r: r.line)
        if rejects and not options.allow_rejects:
            refusal.extend(f"line {r.line}: {r.reason}" for r in rejects)
        refusal.extend(_removal_problems(plan, options))
        return not refusal and not options.dry_run

    plan, applied = tx.catalog.import_rows(tenant.id, chunks(), full_sync=options.full_sync, approve=approve)
    report = ImportReport(
        slug,
        plan.counts,
        read,
        rejects,
        plan.samples,
        plan.active,
        options.full_sync,
        options.dry_run,
        applied,
    )
    if refusal:
        raise ImportRefused(refusal, report)
    return report


class _Digests:
    """The source digest of each row of a stream: 64 bits of what decides a row's validated record (its
    columns and cells, the default region and the validation rules' version). Stored with the
    subscription the row writes, it lets the next import recognise the same row without validating it
    (``Catalog.unchanged_digests``). What every row shares is encoded once per header, not per row."""

    def __init__(self, region: str | None) -> None:
        self._region = region or ""
        self._columns: tuple[str, ...] | None = None
        self._prefix = b""

    def __call__(self, row: SourceRow) -> int:
        if row.columns is not self._columns:
            self._columns = row.columns
            self._prefix = f"{_RULES_VERSION}\x1e{self._region}\x1e{chr(0x1F).join(row.columns)}\x1e".encode()
        data = self._prefix + "\x1f".join(row.cells).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


class _KeptRows:
    """The rows recognised by their digest, three integers each (a million of them: 24 MB), until the
    file has been read: only then is it known which share a customer with a staged row."""

    def __init__(self) -> None:
        self.lines, self.digests, self.refs = array("q"), array("q"), array("q")
        self._columns: tuple[str, ...] | None = None
        self._ref_at = 0

    def add(self, row: SourceRow, digest: int) -> None:
        """Keep ``row`` (valid when it was imported, so it has every required column)."""
        if row.columns is not self._columns:
            self._columns, self._ref_at = row.columns, row.columns.index("external_ref")
        self.lines.append(row.line)
        self.digests.append(digest)
        self.refs.append(hash(row.cells[self._ref_at].strip()))

    def split(self, staged_refs: set[int]) -> tuple[list[KeptRow], array[int]]:
        """The kept rows of a staged customer (to be checked with its staged rows), and the digests of
        the others (unchanged, nothing to check). A hash shared by chance only checks a row more."""
        checked: list[KeptRow] = []
        rest: array[int] = array("q")
        for line, digest, ref in zip(self.lines, self.digests, self.refs, strict=True):
            if ref in staged_refs:
                checked.append((line, digest))
            else:
                rest.append(digest)
        return checked, rest


def _chunk(
    staged: list[SourceRow],
    digests: list[int],
    region: str | None,
    rejects: list[RejectedRow],
    staged_refs: set[int] | None,
) -> ImportChunk:
    """The chunk of ``staged`` rows validated (rejects go to ``rejects``); the customer of each valid one
    goes to ``staged_refs`` (as its ``hash()``) unless that is None."""
    valid: list[ImportRow] = []
    valid_digests: list[int] = []
    for item, digest in zip(validated_rows(staged, region), digests, strict=True):
        if isinstance(item, RejectedRow):
            rejects.append(item)
        else:
            valid.append(item)
            valid_digests.append(digest)
            if staged_refs is not None:
                staged_refs.add(hash(item[1].external_ref))
    return ImportChunk(valid, valid_digests)


def _removal_problems(plan: ImportPlan, options: ImportOptions) -> list[str]:
    removed = plan.counts.removed
    problems = []
    if options.max_removals is not None and removed > options.max_removals:
        problems.append(f"the full sync would remove {removed} subscriptions; the limit is {options.max_removals}")
    percent = options.max_removals_percent
    if percent is not None and removed > plan.active * percent / 100:
        problems.append(
            f"the full sync would remove {removed} of {plan.active} subscriptions, more than {percent:g}%; "
            "check the file, or allow it with a larger --max-removals"
        )
    return problems


def import_customers(
    uow: UnitOfWork, slug: str, lines: Iterable[str] | str, default_region: str | None = None
) -> ImportCounts:
    """Import a CSV's text in the caller's transaction (all rows or none; any bad row refuses it)."""
    text = lines if isinstance(lines, str) else "".join(lines)
    rows = source_rows(csv_files.read_rows(text))
    return sync_customers(uow, slug, rows, ImportOptions(region=default_region)).counts
