"""CSV files in and out: reading tenants' files that may be hostile, writing reports safe to open.

A customers CSV comes from outside (a tenant's export, an operator's spreadsheet), so nothing in it
may crash the command or half-import a file. Whatever makes the file as a whole unreadable raises a
:class:`ValidationError` naming the line: a file over :data:`MAX_FILE_BYTES`, bytes that are not
UTF-8, a NUL byte, a field over :data:`MAX_FIELD_CHARS`, or anything else the csv module refuses.
Row-level problems are the caller's (``services.customers``).

Every CSV this project writes for a person to open (the onboarding rejects file) goes through
:func:`write_csv`, whose cells are escaped by :func:`spreadsheet_safe` against formula injection: a
cell such as ``=HYPERLINK(...)`` would otherwise run when the file is opened in a spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tenant_worker.domain.model import ValidationError

MAX_FILE_BYTES = 128 * 1024 * 1024
"""Largest customers CSV read: 128 MiB, about 1.7 million customers of ~80 bytes, imported in one
transaction (:func:`stream_rows` reads it a line at a time, so memory does not grow with it); a
larger file can be split and imported part by part, as importing is an upsert (but not a full sync)."""

MAX_FIELD_CHARS = 64 * 1024
"""Longest CSV field read (64 KiB). Every column has a far smaller bound of its own (a name 100
characters); this one stops a runaway field (a missing closing quote, a pasted blob) early."""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection")."""


def read_csv_text(path: Path) -> str:
    """The text of a UTF-8 CSV file (a BOM is dropped), or a :class:`ValidationError` naming the
    file and the line of the first byte that is not UTF-8."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValidationError(
            [
                f"{path}: the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}: split it "
                "and import the parts one after another (an import updates customers it already has)"
            ]
        )
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError([f"{path}: line 1: the file is UTF-16; save it as UTF-8"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValidationError(
            [
                f"{path}: line {line}: byte 0x{data[exc.start]:02x} (column {column}) is not UTF-8; "
                "save the file as UTF-8 (a spreadsheet's 'CSV UTF-8' format), not Latin-1 or Windows-1252"
            ]
        ) from None


def stream_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """:func:`read_rows` of a file, read a line at a time (constant memory), with
    :func:`read_csv_text`'s checks: the size limit, UTF-16, bytes that are not UTF-8 (the error names
    the line, found by reading the file again), each as a :class:`ValidationError` naming the file."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        read_csv_text(path)  # raises, with the message naming the limit
    with path.open("rb") as head:
        if head.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise ValidationError([f"{path}: line 1: the file is UTF-16; save it as UTF-8"])
    with path.open(encoding="utf-8-sig", newline="") as lines:
        try:
            yield from _rows(_checked_lines(lines))
        except UnicodeDecodeError:
            read_csv_text(path)  # raises, naming the line and column of the byte
            raise


def _checked_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines, refusing one with a NUL character (naming its line)."""
    for number, line in enumerate(lines, start=1):
        if "\x00" in line:
            raise ValidationError(
                [f"line {number}: contains a NUL byte (a UTF-16 or binary file?); save it as UTF-8 text"]
            )
        yield line


def read_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, cells)`` for every record that is not blank; ``line`` is the record's last line.

    Raises :class:`ValidationError` naming the line on a NUL character, a field longer than
    :data:`MAX_FIELD_CHARS` or any error of the csv module; the caller must then write nothing.
    """
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ValidationError([f"line {line}: contains a NUL byte (a UTF-16 or binary file?); save it as UTF-8 text"])
    return _rows(_lines(text))


def _rows(lines: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    _ensure_field_limit()
    reader = csv.reader(lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise ValidationError([_too_long(reader.line_num)]) from None
            raise ValidationError([f"line {reader.line_num}: not readable as CSV: {exc}"]) from None
        longest = max(map(len, cells), default=0)
        if longest > MAX_FIELD_CHARS:
            raise ValidationError([_too_long(reader.line_num, longest)])
        if cells:
            yield reader.line_num, cells


def spreadsheet_safe(cell: object) -> str:
    """``cell`` as text that a spreadsheet shows as text: prefixed with ``'`` when it starts with one of
    :data:`FORMULA_TRIGGERS` (OWASP's recommendation; the quote survives csv quoting)."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def write_csv(path: Path, header: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """Write a UTF-8 CSV with every cell escaped by :func:`spreadsheet_safe`."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)


_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+\Z")


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their endings (``\n``, ``\r\n`` or ``\r``, as a file opened with
    ``newline=""``), one at a time: an ``io.StringIO`` would hold a copy of the whole file at four bytes
    a character, a quarter of a gigabyte for a 50 MB file."""
    return (match.group() for match in _LINE.finditer(text))


def _too_long(line: int, length: int | None = None) -> str:
    size = f"{length:,} characters long" if length is not None else f"longer than {MAX_FIELD_CHARS:,} characters"
    return f"line {line}: a field is {size}; the limit is {MAX_FIELD_CHARS:,}"


def _ensure_field_limit() -> None:
    """The csv module's own (process-wide) limit must not be below ours, so that our check, which
    names the line and the length, is the one that speaks; it is raised only that far, never lowered."""
    if csv.field_size_limit() <= MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS + 1)
