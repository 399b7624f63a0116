"""The generated Avro writers and readers against fastavro, which defines the expected bytes and values."""

from __future__ import annotations

import datetime
import io
import re
import struct
import uuid
from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import all_schema_names, example, example_path, load_schema
from services.common.avro_codegen import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    compile_reader,
    compile_writer,
    generated_source,
    reader_for,
    writer_for,
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UTC = datetime.UTC
MONEY = {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}
RICH: dict[str, Any] = {
    "type": "record",
    "name": "Rich",
    "namespace": "test.codegen",
    "fields": [
        {"name": "nothing", "type": "null"},
        {"name": "flag", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "d_dict", "type": {"type": "double"}},
        {"name": "raw", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "a", "type": "int"},
                    {"name": "tags", "type": {"type": "array", "items": "string"}},
                    {"name": "c", "type": "Color", "default": "GREEN"},
                ],
            },
        },
        {"name": "inners", "type": {"type": "array", "items": "Inner"}},
        {"name": "scores", "type": {"type": "map", "values": ["null", "double"]}},
        {"name": "matrix", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "floats", "type": {"type": "array", "items": "float"}},
        {"name": "opt_s", "type": ["null", "string"], "default": None},
        {"name": "opt_i_last", "type": ["int", "null"], "default": 0},
        {"name": "opt_l", "type": ["null", "long"]},
        {"name": "opt_f", "type": ["null", "float"]},
        {"name": "opt_d", "type": ["double", "null"]},
        {"name": "opt_b", "type": ["null", "boolean"]},
        {"name": "opt_raw", "type": ["null", "bytes"]},
        {"name": "opt_color", "type": ["null", "Color"]},
        {"name": "opt_digest", "type": ["null", "Digest"]},
        {"name": "opt_inner", "type": ["null", "Inner"]},
        {"name": "opt_array", "type": ["null", {"type": "array", "items": "int"}]},
        {"name": "opt_map", "type": ["null", {"type": "map", "values": "string"}]},
        {
            "name": "multi",
            "type": [
                "null",
                "int",
                "string",
                "double",
                "Inner",
                {"type": "record", "name": "Other", "fields": [{"name": "z", "type": "string"}]},
            ],
        },
        {"name": "number", "type": ["float", "double", "long"]},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "amount", "type": MONEY},
        {
            "name": "fixed_amount",
            "type": {
                "type": "fixed",
                "name": "Money",
                "size": 8,
                "logicalType": "decimal",
                "precision": 12,
                "scale": 3,
            },
        },
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "opt_day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "opt_ts", "type": [{"type": "long", "logicalType": "timestamp-millis"}, "null"]},
        {"name": "opt_amount", "type": ["null", MONEY]},
        {"name": "opt_id", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
        {"name": "with_default", "type": "string", "default": "fallback"},
        {"name": "list_default", "type": {"type": "array", "items": "int"}, "default": [1, 2]},
    ],
}
LINKED: dict[str, Any] = {
    "type": "record",
    "name": "Node",
    "fields": [{"name": "value", "type": "int"}, {"name": "next", "type": ["null", "Node"], "default": None}],
}
JUNK: list[Any] = [
    None,
    "x",
    "",
    1.5,
    -1,
    2**31,
    2**63,
    True,
    b"ab",
    b"abcd",
    bytearray(b"ab"),
    [],
    {},
    ("string", "x"),
    float("nan"),
    Decimal("1.001"),
    Decimal("3"),
    "NaN",
    datetime.date(2020, 1, 1),
]
WRITE_ERRORS = (ValueError, TypeError, KeyError, OverflowError)


# -- strategies -----------------------------------------------------------------------------------------------


def _times() -> st.SearchStrategy[datetime.datetime]:
    return st.datetimes(min_value=datetime.datetime(1971, 1, 1), max_value=datetime.datetime(2100, 1, 1))


def _logical(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    if kind in ("long-timestamp-millis", "long-timestamp-micros"):
        return st.one_of(_times().map(lambda d: d.replace(tzinfo=UTC)), _times(), st.integers(0, 2**42))
    if kind == "long-local-timestamp-millis":
        return st.one_of(_times(), st.integers(-(2**42), 2**42))
    if kind == "int-date":
        return st.one_of(st.dates(), st.integers(-(10**5), 10**5), st.dates().map(datetime.date.isoformat))
    if kind in ("int-time-millis", "long-time-micros"):
        return st.one_of(st.times(), st.integers(0, 86_399_999))
    if kind in ("bytes-decimal", "fixed-decimal"):
        scale, precision = schema.get("scale", 0), schema["precision"]
        bound = Decimal(10) ** (precision - scale) - 1
        return st.decimals(min_value=-bound, max_value=bound, places=scale, allow_nan=False, allow_infinity=False)
    if kind == "string-uuid":
        return st.one_of(st.uuids(), st.uuids().map(str))
    return None


def values(schema: Any, named: dict[str, Any], junk: bool = False, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a parsed schema; with ``junk``, any position may hold a value of the wrong kind."""
    valid = _valid(schema, named, junk, depth)
    return st.one_of(valid, st.sampled_from(JUNK)) if junk else valid


def _valid(schema: Any, named: dict[str, Any], junk: bool, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        return st.one_of(*[values(branch, named, junk, depth + 1) for branch in schema])
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and schema.get("logicalType"):
        logical = _logical(f"{kind}-{schema['logicalType']}", schema)
        if logical is not None:
            return logical
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.one_of(st.integers(INT_MIN, INT_MAX), st.sampled_from([INT_MIN, INT_MAX, 0, -1, 63, 64, 8191])),
        "long": st.one_of(st.integers(LONG_MIN, LONG_MAX), st.sampled_from([LONG_MIN, LONG_MAX, -(2**13), 2**13])),
        "float": st.one_of(st.floats(width=32), st.integers(-(2**20), 2**20)),
        "double": st.one_of(st.floats(), st.integers(-(2**40), 2**40)),
        "bytes": st.binary(max_size=20),
        "string": st.text(max_size=12),
    }
    if kind in simple:
        return simple[kind]
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(values(schema["items"], named, junk, depth + 1), max_size=3 if depth < 3 else 0)
    if kind == "map":
        return st.dictionaries(
            st.text(max_size=4), values(schema["values"], named, junk, depth + 1), max_size=3 if depth < 3 else 0
        )
    if kind == "record":
        if depth > 4:
            return st.nothing()
        required: dict[str, st.SearchStrategy[Any]] = {}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for field in schema["fields"]:
            strategy = values(field["type"], named, junk, depth + 1)
            (optional if "default" in field or junk else required)[field["name"]] = strategy
        return st.fixed_dictionaries(required, optional=optional)
    raise AssertionError(f"no strategy for {schema!r}")


# -- comparisons ----------------------------------------------------------------------------------------------


def fastavro_bytes(parsed: Any, record: Any) -> bytes | Exception:
    out = io.BytesIO()
    try:
        fastavro.schemaless_writer(out, parsed, record)
    except Exception as error:  # whatever fastavro raises counts as a rejection
        return error
    return out.getvalue()


def check_write(parsed: Any, record: Any, must_succeed: bool = False) -> None:
    expected = fastavro_bytes(parsed, record)
    try:
        got: bytes | Exception = compile_writer(parsed)(record)
    except WRITE_ERRORS as error:
        got = error
    if isinstance(expected, bytes):
        if isinstance(got, Exception):  # the one deliberate difference: ints beyond 32 bits in an int position
            assert isinstance(got, ValueError) and "does not fit in an Avro int" in str(got), (record, got)
        else:
            assert got == expected, record
    else:
        assert not must_succeed, (record, expected)
        assert isinstance(got, Exception), (record, expected, got)


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and repr(a) == repr(b)


def check_read(parsed: Any, body: bytes) -> None:
    """Whatever fastavro decodes (consuming the whole body), the compiled reader decodes to the same value;
    whatever fastavro rejects, it rejects too."""
    buffer = io.BytesIO(body)
    try:
        expected = fastavro.schemaless_reader(buffer, parsed, None)
        accepted = buffer.tell() == len(body)
    except Exception:
        accepted = False
    read = compile_reader(parsed)
    assert read is not None
    try:
        got = read(body)
    except Exception as error:
        # stricter than fastavro only for negative union/enum indexes and varints beyond 64 bits
        assert not accepted or "index" in str(error) or "varint" in str(error), (body, error)
        return
    assert accepted, (body, got)
    assert same(got, expected), (got, expected)


def parsed_with_names(schema: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    named: dict[str, Any] = {}
    return fastavro.parse_schema(schema, named), named


RICH_PARSED, RICH_NAMED = parsed_with_names(RICH)


# -- tests ----------------------------------------------------------------------------------------------------


CONTRACTS = all_schema_names()


@pytest.mark.parametrize("name", [n for n in CONTRACTS if example_path(n).exists()])
def test_contract_examples_encode_and_decode_like_fastavro(name: str) -> None:
    parsed = fastavro.parse_schema(load_schema(name))
    record = example(name)
    check_write(parsed, record, must_succeed=True)
    assert writer_for(parsed).compiled
    check_read(parsed, fastavro_bytes(parsed, record))  # type: ignore[arg-type]


@FAST
@given(data=st.data())
def test_contract_records_encode_and_decode_like_fastavro(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(CONTRACTS))
    parsed, named = parsed_with_names(load_schema(name))
    record = data.draw(values(parsed, named))
    check_write(parsed, record, must_succeed=True)
    check_read(parsed, fastavro_bytes(parsed, record))  # type: ignore[arg-type]


@FAST
@given(record=values(RICH_PARSED, RICH_NAMED))
def test_rich_records_are_byte_identical(record: dict[str, Any]) -> None:
    check_write(RICH_PARSED, record, must_succeed=True)


@FAST
@given(record=values(RICH_PARSED, RICH_NAMED, junk=True))
def test_invalid_records_raise_where_fastavro_raises(record: Any) -> None:
    check_write(RICH_PARSED, record)


@FAST
@given(record=values(RICH_PARSED, RICH_NAMED), data=st.data())
def test_rich_bodies_decode_like_fastavro_even_when_corrupted(record: dict[str, Any], data: st.DataObject) -> None:
    body = fastavro_bytes(RICH_PARSED, record)
    assert isinstance(body, bytes)
    check_read(RICH_PARSED, body)
    position = data.draw(st.integers(0, len(body) - 1))
    corrupted = data.draw(
        st.sampled_from(
            [
                body[:position],
                body + b"\x00",
                body[:position] + bytes([body[position] ^ data.draw(st.integers(1, 255))]) + body[position + 1 :],
            ]
        )
    )
    check_read(RICH_PARSED, corrupted)


@pytest.mark.parametrize(
    ("schema", "record"),
    [
        ("long", 2**63),
        ("long", -(2**63) - 1),
        ("int", "1"),
        ("long", None),
        ("string", b"bytes"),
        ("string", 5),
        ("bytes", "text"),
        ("double", "not a number"),
        ({"type": "double"}, "1.5"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "B"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, ["A"]),
        ({"type": "fixed", "name": "F", "size": 2}, b"abc"),
        ({"type": "fixed", "name": "F", "size": 2}, "ab"),
        (["null", "int"], True),
        (["null", "int"], 2**40),
        (["null", "string"], b"x"),
        (["int", "string"], 1.5),
        ({"type": "map", "values": "int"}, [("a", 1)]),
        ({"type": "map", "values": "int"}, {1: 1}),
        ({"type": "array", "items": "int"}, None),
        (MONEY, Decimal("1.001")),
        (MONEY, Decimal("12345678.90")),
    ],
)
def test_values_fastavro_rejects_are_rejected(schema: Any, record: Any) -> None:
    parsed = fastavro.parse_schema({"type": "record", "name": "R", "fields": [{"name": "v", "type": schema}]})
    assert isinstance(fastavro_bytes(parsed, {"v": record}), Exception)
    with pytest.raises(WRITE_ERRORS):
        compile_writer(parsed)({"v": record})


def test_int_beyond_32_bits_is_rejected() -> None:
    parsed = fastavro.parse_schema({"type": "record", "name": "R", "fields": [{"name": "v", "type": "int"}]})
    assert isinstance(fastavro_bytes(parsed, {"v": 2**31}), bytes)  # fastavro writes a long no reader accepts
    with pytest.raises(ValueError, match="does not fit in an Avro int"):
        compile_writer(parsed)({"v": 2**31})
    assert compile_writer(parsed)({"v": INT_MAX}) == fastavro_bytes(parsed, {"v": INT_MAX})


def test_missing_fields_take_defaults_or_raise() -> None:
    write = compile_writer(RICH_PARSED)
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "D",
            "fields": [
                {"name": "a", "type": "int", "default": 7},
                {"name": "b", "type": ["null", "string"]},
                {"name": "c", "type": "string"},
            ],
        }
    )
    check_write(parsed, {"c": "x"}, must_succeed=True)
    with pytest.raises(ValueError, match="no value and no default for c"):
        compile_writer(parsed)({"a": 1})
    assert write is compile_writer(RICH_PARSED)


@pytest.mark.parametrize("wrap", [OrderedDict, MappingProxyType, lambda d: dict(d, extra="ignored")])
def test_other_mappings_and_extra_keys(wrap: Any) -> None:
    parsed = fastavro.parse_schema(LINKED)
    check_write(parsed, wrap({"value": 1, "next": {"value": 2}}), must_succeed=True)


def test_unusual_python_types_follow_fastavro() -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "U",
            "fields": [
                {"name": "i", "type": "long"},
                {"name": "f", "type": "float"},
                {"name": "d", "type": "double"},
                {"name": "b", "type": "bytes"},
                {"name": "a", "type": {"type": "array", "items": "int"}},
                {"name": "flag", "type": "boolean"},
            ],
        }
    )
    import array

    for record in (
        {"i": 1.9, "f": "NaN", "d": "1e3", "b": bytearray(b"xy"), "a": (1, 2), "flag": "yes"},
        {"i": Decimal("5"), "f": 1e300, "d": -1e300, "b": memoryview(b"z"), "a": array.array("i", [3]), "flag": 0},
        {"i": True, "f": -1e300, "d": 2**70, "b": b"", "a": range(3), "flag": None},
    ):
        check_write(parsed, record, must_succeed=True)


def test_recursive_types_delegate_and_stay_identical() -> None:
    parsed = fastavro.parse_schema(LINKED)
    record = {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}}
    check_write(parsed, record, must_succeed=True)
    assert writer_for(parsed).compiled
    assert reader_for(parsed) is None  # decoding recursive types stays with fastavro


def test_generated_source_is_specialised() -> None:
    parsed = fastavro.parse_schema(load_schema("com.freightline.web.ProductView"))
    source = generated_source(parsed)
    assert source is not None
    assert "'product_id'" in source and re.search(r"FA\d+\(buf, ", source)  # unusual values go to fastavro


def test_uuid_objects_and_naive_datetimes_match() -> None:
    parsed = fastavro.parse_schema(load_schema("com.freightline.web.ProductView"))
    record = example("com.freightline.web.ProductView")
    record["metadata"]["event_id"] = uuid.UUID(int=42)
    record["metadata"]["event_time"] = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901)
    check_write(parsed, record, must_succeed=True)


# -- unions of records, decimals, nullable records ------------------------------------------------------------

AMOUNT = {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}
BRANCHES: dict[str, Any] = {
    "type": "record",
    "name": "Branches",
    "namespace": "test.unions",
    "fields": [
        {
            "name": "place",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Place",
                    "fields": [
                        {"name": "country", "type": "string"},
                        {"name": "city", "type": ["null", "string"], "default": None},
                        {"name": "zip", "type": "int", "default": 0},
                        {"name": "lat", "type": "float", "default": 0.0},
                    ],
                },
            ],
        },
        {
            "name": "details",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Search",
                    "fields": [{"name": "query", "type": "string"}, {"name": "count", "type": "int"}],
                },
                {
                    "type": "record",
                    "name": "Purchase",
                    "fields": [
                        {"name": "order_id", "type": ["null", "string"], "default": None},
                        {"name": "amount", "type": AMOUNT},
                        {"name": "method", "type": {"type": "enum", "name": "Method", "symbols": ["CARD", "CASH"]}},
                    ],
                },
                {
                    "type": "record",
                    "name": "Outcome",
                    "fields": [
                        {"name": "order_id", "type": "string"},
                        {"name": "reason", "type": ["null", "string"], "default": None},
                    ],
                },
                {
                    "type": "record",
                    "name": "Rich",
                    "fields": [
                        {"name": "order_id", "type": "string"},
                        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                        {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}], "default": None},
                        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "default": "x"},
                        {"name": "ratio", "type": "double", "default": 1.5},
                        {"name": "flag", "type": "boolean", "default": False},
                        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
                        {"name": "scores", "type": {"type": "map", "values": ["null", "long"]}, "default": {}},
                        {
                            "name": "digest",
                            "type": ["null", {"type": "fixed", "name": "D2", "size": 2}],
                            "default": None,
                        },
                        {"name": "where", "type": ["null", "Place"], "default": None},
                    ],
                },
            ],
            "default": None,
        },
        {"name": "records_only", "type": ["Search", "Outcome"]},
        {"name": "null_last", "type": ["Outcome", "null"]},
        {"name": "amount", "type": AMOUNT},
        {"name": "opt_amount", "type": ["null", AMOUNT], "default": None},
        {"name": "wide", "type": {"type": "bytes", "logicalType": "decimal", "precision": 40, "scale": 3}},
        {"name": "whole", "type": {"type": "bytes", "logicalType": "decimal", "precision": 5}},
    ],
}
BRANCHES_PARSED, BRANCHES_NAMED = parsed_with_names(BRANCHES)
PLACE_UNION = BRANCHES_PARSED["fields"][0]["type"]
FIELD_VALUES: list[Any] = [
    None,
    "o-1",
    "",
    "CARD",
    "CASH",
    "cheque",
    0,
    7,
    -1,
    2**31,
    2**40,
    True,
    False,
    1.5,
    float("nan"),
    "NaN",
    b"ab",
    b"abc",
    bytearray(b"ab"),
    Decimal("1.50"),
    Decimal("-0.05"),
    Decimal("1.5"),
    Decimal("1.001"),
    Decimal("123456.78"),
    ["a"],
    [1],
    {},
    {"a": 1},
    {"a": None},
    {"country": "DE"},
    {"country": "DE", "zip": True},
    ("test.unions.Place", {"country": "DE"}),
    datetime.datetime(2026, 1, 2, 3, 4, 5),
    datetime.date(2026, 1, 2),
    "2026-01-02",
    uuid.UUID(int=7),
]
FIELD_NAMES = sorted(
    {
        field["name"]
        for branch in BRANCHES["fields"][1]["type"][1:]
        for field in branch["fields"]  # type: ignore[index]
    }
)


def mixed_dicts() -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with keys of any branches (so several branches may accept one), odd values, extra keys, '-type'."""
    keys = st.sampled_from([*FIELD_NAMES, "extra", "-type"])
    value = st.one_of(
        st.sampled_from(FIELD_VALUES),
        st.sampled_from(["test.unions.Search", "test.unions.Outcome", "Outcome"]),
        st.text(max_size=3),
        st.integers(-(2**33), 2**33),
    )
    return st.dictionaries(keys, value, max_size=7)


def details_values() -> st.SearchStrategy[Any]:
    names = st.sampled_from(
        ["test.unions.Search", "test.unions.Purchase", "test.unions.Outcome", "test.unions.Rich", "null", "Search", "x"]
    )
    return st.one_of(
        values(BRANCHES_PARSED["fields"][0]["type"], BRANCHES_NAMED),
        mixed_dicts(),
        st.tuples(names, st.one_of(mixed_dicts(), st.sampled_from(FIELD_VALUES))),
        st.tuples(names, mixed_dicts(), st.none()),
        st.sampled_from(FIELD_VALUES),
    )


def decimals(places: int = 2) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.decimals(min_value=-(10**6), max_value=10**6, places=places, allow_nan=False, allow_infinity=False),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.integers(-(2**20), 2**20).map(lambda n: Decimal(n).scaleb(-places)),
        st.integers(-(2**20), 2**20).map(lambda n: Decimal(n).scaleb(-places - 1)),
        st.integers(-(2**20), 2**20).map(lambda n: Decimal(n).scaleb(1)),
        st.sampled_from(
            [
                Decimal("0.00"),
                Decimal("-0.00"),
                Decimal("1.28"),
                Decimal("-1.28"),
                Decimal("-1.29"),
                Decimal("327.67"),
                Decimal("327.68"),
                Decimal("-327.68"),
                Decimal("-327.69"),
                Decimal("9999.99"),
                Decimal("-9999.99"),
                Decimal("10000.00"),
                Decimal("0.5"),
                Decimal("1E+2"),
                Decimal("1.00E+2"),
                Decimal("1.000"),
                Decimal("1.2E-7"),
                Decimal("sNaN"),
                1,
                1.5,
                "1.50",
                b"\x01",
                bytearray(b"\x01"),
                None,
                True,
            ]
        ),
    )


def branches_records() -> st.SearchStrategy[dict[str, Any]]:
    valid = values(BRANCHES_PARSED, BRANCHES_NAMED)
    return st.one_of(
        valid,
        st.fixed_dictionaries(
            {
                "details": details_values(),
                "records_only": st.one_of(details_values(), mixed_dicts()),
                "null_last": st.one_of(st.none(), mixed_dicts(), details_values()),
                "place": st.one_of(st.none(), mixed_dicts(), values(PLACE_UNION, BRANCHES_NAMED)),
                "amount": decimals(),
                "opt_amount": decimals(),
                "wide": decimals(3),
                "whole": decimals(0),
            }
        ),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=branches_records())
def test_record_unions_decimals_and_nullable_records_match_fastavro(record: dict[str, Any]) -> None:
    check_write(BRANCHES_PARSED, record)


def write_field(value: Any, field: str = "details", **others: Any) -> bytes | Exception:
    """fastavro's bytes (or error) for a Branches record with ``value`` in ``field``, after checking that the
    compiled writer agrees."""
    record: dict[str, Any] = {
        "details": None,
        "records_only": {"query": "q", "count": 1},
        "null_last": None,
        "place": None,
        "amount": Decimal("1.00"),
        "wide": Decimal("0.000"),
        "whole": Decimal("1"),
        **others,
    }
    record[field] = value
    check_write(BRANCHES_PARSED, record)
    return fastavro_bytes(BRANCHES_PARSED, record)


def union_index(body: bytes | Exception) -> int:
    """The branch index of 'details' in a Branches body whose 'place' is None."""
    assert isinstance(body, bytes)
    return body[1] >> 1


@pytest.mark.parametrize(
    ("details", "index"),
    [
        ({"query": "q", "count": 3}, 1),
        ({"amount": Decimal("1.00"), "method": "CARD"}, 2),
        ({"order_id": "o", "amount": Decimal("1.00"), "method": "CARD"}, 2),  # Outcome accepts it too, fewer fields
        ({"order_id": "o"}, 3),  # Outcome and Rich? Rich needs 'at': only Outcome
        ({"order_id": "o", "at": 5}, 4),  # Outcome (1 field present) and Rich (2): Rich
        ({"order_id": "o", "at": 5, "ratio": "NaN"}, 3),  # Rich rejects "NaN" (its writer would convert it)
        ({"order_id": "o", "reason": None, "at": 5}, 3),  # a tie (2 and 2): the first
        ({"order_id": "o", "extra": 1}, 3),  # extra keys are ignored
        ({"order_id": "o", "-type": "test.unions.Rich", "at": 1}, 4),  # '-type' names the branch
        ({"order_id": "o", "-type": "test.unions.Outcome", "at": 1}, 3),
        (("test.unions.Outcome", {"order_id": "o", "amount": Decimal("1.00"), "method": "CARD"}), 3),  # no validation
        (("test.unions.Search", {"query": "q", "count": 1}), 1),
        ({"query": "q", "count": 1, "order_id": "o", "amount": Decimal("1.00"), "method": "CARD"}, 2),
    ],
)
def test_union_branch_is_chosen_as_fastavro_chooses_it(details: Any, index: int) -> None:
    assert union_index(write_field(details)) == index


@pytest.mark.parametrize(
    "details",
    [
        {"query": "q", "count": True},  # bool is no int to fastavro's validator (its writer would take it)
        {"query": "q", "count": 2**31},
        {"query": "q", "count": 1.0},
        {"order_id": 5},
        {"amount": Decimal("1.001"), "method": "CARD"},  # the decimal's conversion raises during validation
        {"amount": Decimal("12345.67"), "method": "CARD"},  # too many digits
        {"amount": 1.5, "method": "CARD"},
        {"amount": Decimal("1.00"), "method": "CHEQUE"},
        # ('reason': 5 makes Outcome reject them too)
        {"order_id": "o", "reason": 5, "at": 1, "ratio": "NaN"},  # the writer converts "NaN", the validator not
        {"order_id": "o", "reason": 5, "at": 1, "flag": 1},
        {"order_id": "o", "reason": 5, "at": 1.5},
        ("test.unions.Nope", {"query": "q", "count": 1}),
        ("test.unions.Search", {"query": "q"}),
        ("test.unions.Search", {"query": "q", "count": 1}, None),
        {},
        [],
        "text",
    ],
)
def test_union_values_fastavro_rejects_are_rejected(details: Any) -> None:
    assert isinstance(write_field(details), Exception)


@pytest.mark.parametrize(
    "place",
    [
        {"country": "DE"},
        {"country": "DE", "city": "Berlin", "zip": 10115, "lat": 52.5, "extra": [1]},
        {"country": "DE", "zip": True},  # rejected: the validator refuses bool for int
        {"country": "DE", "lat": "NaN"},  # rejected by the validator though the writer converts it
        {"country": "DE", "lat": 1},
        {"country": "DE", "city": b"Berlin"},
        {"city": "Berlin"},
        {"country": "DE", "-type": "test.unions.Place"},
        OrderedDict(country="DE"),
        ("test.unions.Place", {"country": "DE"}),
        None,
        "DE",
    ],
)
def test_nullable_records_match_fastavro(place: Any) -> None:
    write_field(place, field="place")


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0.00"),
        Decimal("-0.00"),
        Decimal("1.27"),
        Decimal("1.28"),
        Decimal("-1.28"),
        Decimal("-1.29"),
        Decimal("327.67"),
        Decimal("-327.68"),
        Decimal("-327.69"),
        Decimal("9999.99"),
        Decimal("-9999.99"),
        Decimal("1.5"),
        Decimal("1E+2"),
        Decimal("1.000"),
        Decimal("10000.00"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        1,
        1.25,
        "1.25",
        b"\x00\x80",
        None,
    ],
)
@pytest.mark.parametrize("field", ["amount", "opt_amount"])
def test_decimals_match_fastavro(amount: Any, field: str) -> None:
    write_field(amount, field=field)


def test_decimals_ignore_the_decimal_context() -> None:
    import decimal

    with decimal.localcontext() as context:
        context.prec = 3
        context.capitals = 0
        for amount in (Decimal("1234.56"), Decimal("1.2E-7"), Decimal("1.00E+3")):
            write_field(amount, field="amount")
            write_field(amount, field="wide")


def test_the_generator_families_take_no_fallback() -> None:
    """The generated fast paths cover clickstream details (tuple notation), decimals and nullable records:
    nothing goes to fastavro for the records the generator produces."""
    from services.generator.config import GeneratorConfig
    from services.generator.engine import Engine

    engine = Engine(GeneratorConfig(anomalies_per_minute=30.0))
    items = engine.reference_snapshot() + engine.take(3_000)
    writers: dict[str, Any] = {}
    for item in items:
        name = {
            "web.clickstream.v1": "com.freightline.web.ClickstreamEvent",
            "commerce.orders.v1": "com.freightline.commerce.Order",
            "logistics.shipment_events.v1": "com.freightline.logistics.ShipmentEvent",
            "finance.supplier_invoices.v1": "com.freightline.finance.SupplierInvoice",
            "finance.supplier_payments.v1": "com.freightline.finance.SupplierPayment",
        }.get(item.topic)
        if name is None:
            continue
        if name not in writers:
            parsed = fastavro.parse_schema(load_schema(name))
            writers[name] = (parsed, writer_for(parsed).append)
        parsed, append = writers[name]
        namespace = append.__globals__

        def refuse(*args: Any, schema: str = name) -> None:
            raise AssertionError(f"fastavro fallback for {schema}")

        saved = {key: namespace[key] for key in namespace if re.fullmatch(r"FA\d+|DECX", key)}
        namespace.update(dict.fromkeys(saved, refuse))
        try:
            buffer = bytearray()
            append(buffer, item.value)
        finally:
            namespace.update(saved)
        assert bytes(buffer) == fastavro_bytes(parsed, item.value)
