"""The generated Avro writers and readers against fastavro, which defines the expected bytes and values."""

from __future__ import annotations

import datetime
import io
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
    assert "'product_id'" in source and "FA(" in source  # fields inlined; unusual values go to fastavro


def test_uuid_objects_and_naive_datetimes_match() -> None:
    parsed = fastavro.parse_schema(load_schema("com.freightline.web.ProductView"))
    record = example("com.freightline.web.ProductView")
    record["metadata"]["event_id"] = uuid.UUID(int=42)
    record["metadata"]["event_time"] = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901)
    check_write(parsed, record, must_succeed=True)
