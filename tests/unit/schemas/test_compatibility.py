"""Compatibility table: each expectation is what Confluent's registry (Java Avro SchemaCompatibility)
decides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.compatibility import (
    CompatibilityLevel,
    SchemaParseError,
    check_compatibility,
    check_parsed_compatibility,
    parse_schema,
)

L = CompatibilityLevel


def rec(*fields: dict[str, Any], name: str = "Order", **extra: Any) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.freightline", "fields": list(fields), **extra})


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Status", "symbols": list(symbols), **extra}


def prim(type_: str) -> str:
    return json.dumps(type_)


# (case id, old schema, new schema, {level: compatible?}) for the non-transitive levels;
# NONE is always compatible and checked separately.
PAIRS: list[tuple[str, str, str, tuple[bool, bool]]] = [
    # (backward, forward); FULL = both
    ("int->long", prim("int"), prim("long"), (True, False)),
    ("long->float", prim("long"), prim("float"), (True, False)),
    ("float->double", prim("float"), prim("double"), (True, False)),
    ("int->double", prim("int"), prim("double"), (True, False)),
    ("long->int", prim("long"), prim("int"), (False, True)),
    ("double->float", prim("double"), prim("float"), (False, True)),
    ("string->bytes", prim("string"), prim("bytes"), (True, True)),
    ("bytes->string", prim("bytes"), prim("string"), (True, True)),
    ("int->string", prim("int"), prim("string"), (False, False)),
    ("boolean->int", prim("boolean"), prim("int"), (False, False)),
    ("same record", rec(f("id", "string")), rec(f("id", "string")), (True, True)),
    ("field int->long", rec(f("qty", "int")), rec(f("qty", "long")), (True, False)),
    (
        "add field with default",
        rec(f("id", "string")),
        rec(f("id", "string"), f("note", ["null", "string"], default=None)),
        (True, True),
    ),
    (
        "add field without default",
        rec(f("id", "string")),
        rec(f("id", "string"), f("qty", "int")),
        (False, True),
    ),
    (
        "remove field with default",
        rec(f("id", "string"), f("note", "string", default="")),
        rec(f("id", "string")),
        (True, True),
    ),
    (
        "remove field without default",
        rec(f("id", "string"), f("qty", "int")),
        rec(f("id", "string")),
        (True, False),
    ),
    (
        "enum symbol added",
        rec(f("status", enum("NEW", "PAID"))),
        rec(f("status", enum("NEW", "PAID", "SHIPPED"))),
        (True, False),
    ),
    (
        "enum symbol added, old enum has a default",
        rec(f("status", enum("NEW", "PAID", "UNKNOWN", default="UNKNOWN"))),
        rec(f("status", enum("NEW", "PAID", "UNKNOWN", "SHIPPED", default="UNKNOWN"))),
        (True, True),
    ),
    (
        "enum symbol removed",
        rec(f("status", enum("NEW", "PAID", "SHIPPED"))),
        rec(f("status", enum("NEW", "PAID"))),
        (False, True),
    ),
    (
        "enum symbol removed, new enum has a default",
        rec(f("status", enum("NEW", "PAID", "SHIPPED"))),
        rec(f("status", enum("NEW", "PAID", default="NEW"))),
        (True, True),
    ),
    (
        "union widened",
        rec(f("v", ["null", "string"])),
        rec(f("v", ["null", "string", "int"])),
        (True, False),
    ),
    (
        "union narrowed",
        rec(f("v", ["null", "string", "int"])),
        rec(f("v", ["null", "string"])),
        (False, True),
    ),
    ("type made nullable", rec(f("v", "string")), rec(f("v", ["null", "string"])), (True, False)),
    ("nullable made required", rec(f("v", ["null", "string"])), rec(f("v", "string")), (False, True)),
    ("union branch promoted", prim("int"), json.dumps(["null", "long"]), (True, False)),
    (
        "field renamed without alias",
        rec(f("qty", "int")),
        rec(f("quantity", "int")),
        (False, False),
    ),
    (
        "field renamed with alias",
        rec(f("qty", "int")),
        rec(f("quantity", "int", aliases=["qty"])),
        (True, False),
    ),
    ("record renamed", rec(f("id", "string")), rec(f("id", "string"), name="Purchase"), (False, False)),
    (
        "record renamed with relative alias",
        rec(f("id", "string")),
        rec(f("id", "string"), name="Purchase", aliases=["Order"]),
        (True, False),
    ),
    (
        "record renamed with full alias",
        rec(f("id", "string")),
        rec(f("id", "string"), name="Purchase", aliases=["com.freightline.Order"]),
        (True, False),
    ),
    (
        "namespace changed only",
        rec(f("id", "string")),
        json.dumps({"type": "record", "name": "Order", "namespace": "com.other", "fields": [f("id", "string")]}),
        (True, True),
    ),
    (
        "fixed size changed",
        rec(f("h", {"type": "fixed", "name": "Hash", "size": 16})),
        rec(f("h", {"type": "fixed", "name": "Hash", "size": 32})),
        (False, False),
    ),
    (
        "fixed renamed",
        rec(f("h", {"type": "fixed", "name": "Hash", "size": 16})),
        rec(f("h", {"type": "fixed", "name": "Digest", "size": 16})),
        (False, False),
    ),
    (
        "nested record in array gains required field",
        rec(f("lines", {"type": "array", "items": json.loads(rec(f("sku", "string"), name="Line"))})),
        rec(
            f(
                "lines",
                {"type": "array", "items": json.loads(rec(f("sku", "string"), f("qty", "int"), name="Line"))},
            )
        ),
        (False, True),
    ),
    (
        "map values promoted",
        rec(f("m", {"type": "map", "values": "int"})),
        rec(f("m", {"type": "map", "values": "long"})),
        (True, False),
    ),
    (
        "array -> map",
        json.dumps({"type": "array", "items": "int"}),
        json.dumps({"type": "map", "values": "int"}),
        (False, False),
    ),
    (
        "logical type added on same physical type",
        rec(f("at", "long")),
        rec(f("at", {"type": "long", "logicalType": "timestamp-millis"})),
        (True, True),
    ),
    (
        "recursive named type",
        rec(f("id", "string"), f("next", ["null", "Order"], default=None)),
        rec(f("id", "string"), f("next", ["null", "Order"], default=None), f("n", "int", default=0)),
        (True, True),
    ),
]


def _expected(level: CompatibilityLevel, backward: bool, forward: bool) -> bool:
    if level is L.NONE:
        return True
    result = True
    if level.checks_backward:
        result = result and backward
    if level.checks_forward:
        result = result and forward
    return result


@pytest.mark.parametrize("level", list(CompatibilityLevel))
@pytest.mark.parametrize(("old", "new", "expected"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_pair_table(level: CompatibilityLevel, old: str, new: str, expected: tuple[bool, bool]) -> None:
    messages = check_compatibility(new, [old], level)
    assert (messages == []) is _expected(level, *expected), messages
    # With a single previous schema, transitive and non-transitive levels agree.
    single = CompatibilityLevel(level.value.removesuffix("_TRANSITIVE"))
    assert (check_compatibility(new, [old], single) == []) is (messages == [])


# Three versions: transitive levels see the first one, non-transitive ones only the latest.
V1 = rec(f("id", "string"))
V2 = rec(f("id", "string"), f("qty", "int", default=0))
V3_BACKWARD = rec(f("id", "string"), f("qty", "int"))  # reads v2, not v1 (qty has no default)
F1 = rec(f("id", "string"), f("qty", "int"))
F2 = rec(f("id", "string"), f("qty", "int", default=0))
F3 = rec(f("id", "string"))  # v2 can read it (default), v1 cannot


@pytest.mark.parametrize(
    ("history", "new", "level", "compatible"),
    [
        ([V1, V2], V3_BACKWARD, L.BACKWARD, True),
        ([V1, V2], V3_BACKWARD, L.BACKWARD_TRANSITIVE, False),
        ([V1, V2], V3_BACKWARD, L.FULL_TRANSITIVE, False),
        ([F1, F2], F3, L.FORWARD, True),
        ([F1, F2], F3, L.FORWARD_TRANSITIVE, False),
        ([F1, F2], F3, L.FULL, True),
        ([F1, F2], F3, L.FULL_TRANSITIVE, False),
        ([F1, F2], F3, L.NONE, True),
        ([], V1, L.FULL_TRANSITIVE, True),
    ],
)
def test_transitive(history: list[str], new: str, level: CompatibilityLevel, compatible: bool) -> None:
    assert (check_compatibility(new, history, level) == []) is compatible


def test_messages_follow_confluent_format() -> None:
    old = rec(f("id", "string"))
    new = rec(f("id", "int"), f("qty", "int"))
    messages = check_compatibility(new, [old], "backward")
    assert messages == [
        "{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a field in the new "
        "schema does not match with the old schema', additionalInfo:'reader type: INT not compatible with "
        "writer type: STRING'}",
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'qty' at path '/fields/1' "
        "in the new schema has no default value and is missing in the old schema', additionalInfo:'qty'}",
    ]


def test_enum_and_union_messages() -> None:
    old = rec(f("status", enum("NEW", "PAID", "SHIPPED")), f("v", ["null", "string", "int"]))
    new = rec(f("status", enum("NEW")), f("v", ["null", "string"]))
    messages = check_compatibility(new, [old], L.BACKWARD)
    assert messages == [
        "{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum symbols "
        "'[PAID, SHIPPED]' at path '/fields/0/type/symbols' in the old schema', "
        "additionalInfo:'[PAID, SHIPPED]'}",
        "{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a union "
        "field at path '/fields/1/type/2' in the old schema', "
        "additionalInfo:'reader union lacking writer type: INT'}",
    ]


def test_name_mismatch_message() -> None:
    messages = check_compatibility(rec(f("id", "string"), name="Other"), [rec(f("id", "string"))], L.BACKWARD)
    assert messages == [
        "{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path '/name')', "
        "additionalInfo:'expected: com.freightline.Order'}"
    ]


def test_report_points_at_latest_incompatible_version() -> None:
    history = [parse_schema(V1), parse_schema(V2)]
    report = check_parsed_compatibility(parse_schema(V3_BACKWARD), history, L.BACKWARD_TRANSITIVE)
    assert not report.is_compatible
    assert report.existing_index == 0
    assert check_parsed_compatibility(parse_schema(V2), history, L.BACKWARD_TRANSITIVE).is_compatible


def test_references_resolve_named_types() -> None:
    address = json.dumps(
        {"type": "record", "name": "Address", "namespace": "com.freightline", "fields": [f("city", "string")]}
    )
    order = rec(f("ship_to", "com.freightline.Address"))
    schema = parse_schema(order, [address])
    assert schema.type == "record"
    with pytest.raises(SchemaParseError):
        parse_schema(order)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"type": "record"}',
        '{"type": "nope"}',
        '{"type": "record", "name": "R", "fields": [{"name": "a"}]}',
        '{"type": "enum", "name": "E", "symbols": ["A", "A"]}',
        '{"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}',
        '{"type": "fixed", "name": "F"}',
        '{"type": "record", "name": "1bad", "fields": []}',
        '["int", "int"]',
        "42",
        "null",
    ],
)
def test_invalid_schemas_raise(text: str) -> None:
    with pytest.raises(SchemaParseError):
        check_compatibility(text, [], L.BACKWARD)
    with pytest.raises(SchemaParseError):
        parse_schema(text)


def test_invalid_previous_schema_raises() -> None:
    with pytest.raises(SchemaParseError):
        check_compatibility(prim("int"), ["{"], L.BACKWARD)


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match="Invalid compatibility level"):
        check_compatibility(prim("int"), [prim("int")], "SIDEWAYS")
    assert CompatibilityLevel.parse("full_transitive") is L.FULL_TRANSITIVE
    assert isinstance(SchemaParseError("x"), ValueError)
