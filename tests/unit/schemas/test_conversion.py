"""Plain JSON examples are converted by the schema: logical types, bytes, unions."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from schemas.conversion import ExampleError, from_json

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "t.R",
    "doc": "r",
    "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "raw", "type": ["null", "bytes"], "default": None},
        {
            "name": "choice",
            "type": [
                "null",
                {"type": "record", "name": "t.A", "fields": [{"name": "a", "type": "int"}]},
                {"type": "record", "name": "t.B", "fields": [{"name": "b", "type": "int"}]},
            ],
        },
        {"name": "again", "type": ["null", "t.A"], "default": None},
        {"name": "count", "type": "int", "default": 1},
    ],
}
VALID = {
    "at": "2026-11-02T08:15:30.120Z",
    "day": "2026-11-02",
    "amount": "12.50",
    "id": "0b7f3c4e-5a1d-4f2b-9c8e-1d2a3b4c5d6e",
    "raw": "aGk=",
    "choice": {"B": {"b": 2}},
    "again": {"a": 1},
}


def test_converts_logical_types_bytes_and_unions() -> None:
    record = from_json(SCHEMA, VALID)
    assert record["at"] == dt.datetime(2026, 11, 2, 8, 15, 30, 120000, tzinfo=dt.UTC)
    assert record["day"] == dt.date(2026, 11, 2)
    assert record["amount"] == Decimal("12.50")
    assert record["id"] == uuid.UUID(str(VALID["id"]))
    assert record["raw"] == b"hi"
    assert record["choice"] == ("t.B", {"b": 2})
    assert record["again"] == {"a": 1}
    assert record["count"] == 1  # filled from the default


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"at": "2026-11-02T08:15:30"}, "offset"),
        ({"amount": 12.5}, "strings"),
        ({"amount": "12.505"}, "decimal places"),
        ({"choice": {"b": 2}}, "is not a branch|naming its branch"),
        ({"choice": {"a": 1, "b": 2}}, "naming its branch"),
        ({"raw": "not base64!"}, "base64"),
        ({"extra": 1}, "no field"),
        ({"day": "02.11.2026"}, "date"),
    ],
)
def test_rejects_values_that_do_not_fit(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ExampleError, match=message):
        from_json(SCHEMA, {**VALID, **change})


def test_missing_field_without_default_is_an_error() -> None:
    document = dict(VALID)
    del document["day"]
    with pytest.raises(ExampleError, match="missing field 'day'"):
        from_json(SCHEMA, document)
