"""Hostile customer CSVs are refused whole with their line number; CSV reports are safe to open in a
spreadsheet; every customer value is bounded."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenant_worker.adapters import csv_files
from tenant_worker.adapters.csv_files import MAX_FIELD_CHARS, read_csv_text, read_rows, spreadsheet_safe, write_csv
from tenant_worker.domain.model import ValidationError
from tenant_worker.services.customers import parse_customers_csv, parse_customers_rows
from tests.unit.test_validation import GOOD_ROW, HEADER, csv_text, problems_of

# Formula injection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        pytest.param(
            '=HYPERLINK("http://evil.example","click")', '\'=HYPERLINK("http://evil.example","click")', id="="
        ),
        pytest.param("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0", id="+"),
        pytest.param("-2+3", "'-2+3", id="-"),
        pytest.param("@SUM(A1:A9)", "'@SUM(A1:A9)", id="@"),
        pytest.param("\t=1+1", "'\t=1+1", id="tab"),
        pytest.param("\r=1+1", "'\r=1+1", id="carriage-return"),
        pytest.param("+31612345678", "'+31612345678", id="phone-with-plus"),
        pytest.param("Ada Lovelace", "Ada Lovelace", id="plain-text"),
        pytest.param("a=b", "a=b", id="trigger-not-first"),
        pytest.param(" =1+1", " =1+1", id="leading-space"),
        pytest.param("'quoted", "'quoted", id="already-a-quote"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
        pytest.param(3, "3", id="line-number"),
        pytest.param(-1, "'-1", id="negative-number"),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_get_a_leading_quote(cell: object, written: str) -> None:
    assert spreadsheet_safe(cell) == written


@pytest.mark.parametrize("trigger", csv_files.FORMULA_TRIGGERS)
def test_escaped_cells_survive_a_round_trip_through_the_csv_writer(tmp_path: Path, trigger: str) -> None:
    hostile = [f'{trigger}HYPERLINK("http://x","a,b")', f'{trigger}1,"2"\n3', "plain"]
    target = tmp_path / "out.csv"

    write_csv(target, ["line", "name", "plan", "other"], [[7, *hostile]])

    with target.open(newline="", encoding="utf-8") as f:
        header, row = list(csv.reader(f))
    assert header == ["line", "name", "plan", "other"]
    assert row == ["7", "'" + hostile[0], "'" + hostile[1], "plain"]
    assert not any(cell.startswith(csv_files.FORMULA_TRIGGERS) for cell in row)


# Files that cannot be read as a whole ----------------------------------------------------------------


def refusal(text: str) -> list[str]:
    with pytest.raises(ValidationError) as excinfo:
        parse_customers_rows(text)
    return excinfo.value.problems


def test_a_nul_byte_refuses_the_file_naming_its_line() -> None:
    [problem] = refusal(csv_text(GOOD_ROW, "c-2,Bo\x00b,+31612345679,Fiber 100,1,EUR,2026-03-01"))

    assert problem.startswith("line 3: contains a NUL byte")


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(MAX_FIELD_CHARS + 1, id="just-over-our-limit"),
        pytest.param(csv.field_size_limit() + 1, id="over-the-csv-module-limit"),
        pytest.param(5_000_000, id="5-MB"),
    ],
)
def test_a_field_over_the_limit_refuses_the_file_naming_its_line(length: int) -> None:
    huge = "x" * length
    text = csv_text(
        GOOD_ROW, f"c-2,{huge},+31612345679,Fiber 100,1,EUR,2026-03-01", "c-3,Cy,+31612345670,F,1,EUR,2026-03-01"
    )

    [problem] = refusal(text)

    assert problem.startswith("line 3: a field is ") and f"the limit is {MAX_FIELD_CHARS:,}" in problem


def test_a_field_at_the_limit_is_read_and_then_rejected_as_a_row() -> None:
    text = csv_text(f"c-1,{'x' * MAX_FIELD_CHARS},+31612345679,Fiber 100,1,EUR,2026-03-01")

    records, [reject] = parse_customers_rows(text)

    assert records == [] and reject.line == 2 and reject.reason == "name is 65,536 characters long; the limit is 100"


def test_a_huge_header_refuses_the_file_on_line_1() -> None:
    [problem] = refusal("x" * (csv.field_size_limit() + 10) + "\n" + GOOD_ROW + "\n")

    assert problem.startswith("line 1: a field is ")


def test_reading_never_lowers_the_csv_module_field_limit() -> None:
    before = csv.field_size_limit()
    list(read_rows(csv_text(GOOD_ROW)))

    assert csv.field_size_limit() == before >= MAX_FIELD_CHARS + 1


def test_a_latin1_file_is_refused_naming_the_line_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(csv_text(GOOD_ROW, "c-2,Zoë,+31612345679,Fiber 100,1,EUR,2026-03-01").encode("latin-1"))

    with pytest.raises(ValidationError) as excinfo:
        read_csv_text(path)

    [problem] = excinfo.value.problems
    assert (
        problem.startswith(f"{path}: line 3: byte 0xeb (column 7) is not UTF-8") and "save the file as UTF-8" in problem
    )


def test_a_utf16_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_text(csv_text(GOOD_ROW), encoding="utf-16")

    with pytest.raises(ValidationError, match="line 1: the file is UTF-16; save it as UTF-8"):
        read_csv_text(path)


def test_a_utf8_file_with_a_bom_is_read_without_it(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text(csv_text("c-1,Zoë,+31612345679,Fiber 100,1,EUR,2026-03-01"), encoding="utf-8-sig")

    [record] = parse_customers_csv(read_csv_text(path))

    assert record.name == "Zoë"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_files, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.csv"
    path.write_text(csv_text(GOOD_ROW, GOOD_ROW.replace("c-1", "c-2")))

    with pytest.raises(ValidationError, match=r"the file is 178 bytes; the limit is 100: split it"):
        read_csv_text(path)


# Bounded values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param(
            f"c-1,{'N' * 10_000},+31612345678,Fiber,1,EUR,2026-03-01",
            "name is 10,000 characters long; the limit is 100",
            id="10000-character-name",
        ),
        pytest.param(
            f"c-1,Ada,+31612345678,{'P' * 51},1,EUR,2026-03-01",
            "plan is 51 characters long; the limit is 50",
            id="plan",
        ),
        pytest.param(f"{'r' * 129},Ada,+31612345678,Fiber,1,EUR,2026-03-01", "external_ref must be 1-128", id="ref"),
        pytest.param(
            "c-1,Ada,+31612345678,Fiber,10000000000,EUR,2026-03-01",
            "amount '10000000000' must be a number from 0 to 9999999999.99",
            id="amount-wider-than-the-column",
        ),
        pytest.param(
            f"c-1,Ada,+31612345678,Fiber,{'9' * 60},EUR,2026-03-01",
            "amount '9999999999999999999999999999999999999...' must be",
            id="long-amount-is-cut-short-in-the-message",
        ),
        pytest.param("c-1,Ada,+31612345678,Fiber,1,ÉÜR,2026-03-01", "currency 'ÉÜR'", id="non-ascii-currency"),
    ],
)
def test_values_over_their_bound_reject_the_row_with_its_line(row: str, reason: str) -> None:
    [problem] = problems_of(csv_text(GOOD_ROW.replace("c-1", "c-0"), row))

    assert problem.startswith("line 3: ") and reason in problem


def test_values_at_their_bound_are_accepted() -> None:
    row = f"{'r' * 128},{'N' * 100},+31612345678,{'P' * 50},9999999999.99,EUR,2026-03-01"

    [record] = parse_customers_csv(csv_text(row))

    assert (len(record.external_ref), len(record.name), len(record.plan)) == (128, 100, 50)


def test_header_only_file_imports_nothing() -> None:
    assert parse_customers_csv(HEADER + "\n") == []


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from('ab,"\r\n \u2028\x0b\x1cé'), max_size=60))
def test_rows_and_line_numbers_are_what_the_csv_module_reads_from_a_file(text: str) -> None:
    reference = csv.reader(io.StringIO(text, newline=""))
    expected = [(reference.line_num, cells) for cells in reference if cells]

    assert list(read_rows(text)) == expected
