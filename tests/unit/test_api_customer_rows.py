"""An upsert row reaches the import service as a CSV row would: every column the import reads, as text."""

from __future__ import annotations

from decimal import Decimal

from tenant_worker.api.customers import CustomerRowIn
from tenant_worker.services.customers import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RejectedRow, validated_rows


def test_an_upsert_row_carries_exactly_the_import_columns_as_text() -> None:
    row = CustomerRowIn(external_ref="cus_1", name="Jane Doe", phone="+31612345678", plan="Fiber 100",
                        amount=12.5, currency="EUR", expires_on="2030-01-31", opted_out=True)  # fmt: skip
    source = row.source_row(7)
    assert source.line == 7 and source.problem is None
    assert set(source.raw) == set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    assert source.raw["amount"] == "12.5" and source.raw["opted_out"] == "true" and source.raw["subscription_ref"] == ""
    [validated] = list(validated_rows([source], None))
    assert not isinstance(validated, RejectedRow), validated
    line, record = validated
    assert (line, record.amount, record.opted_out, record.subscription_ref) == (7, Decimal("12.5"), True, None)
