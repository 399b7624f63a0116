"""The compiled body validator against fastavro: bodies fastavro writes are accepted; every body fastavro's
``schemaless_reader`` rejects (or does not consume to the end) is rejected, and so are truncations and trailing
bytes."""

from __future__ import annotations

import datetime
import io
import uuid
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import all_schema_names, example, example_path, load_schema
from services.common.avro_validate import (
    InvalidBody,
    generated_source,
    metadata_validator_for,
    validator_for,
)
from services.common.serde import UndecodableRecord
from services.common.sinks.records import millis_to_datetime, starts_with_metadata

UTC = datetime.UTC
MONEY = {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}
COLOR = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}
RICH: dict[str, Any] = {
    "type": "record",
    "name": "Rich",
    "namespace": "test.validate",
    "fields": [
        {
            "name": "metadata",
            "type": {
                "type": "record",
                "name": "Meta",
                "fields": [
                    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
                    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                ],
            },
        },
        {"name": "nothing", "type": "null"},
        {"name": "flag", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "color", "type": COLOR},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "a", "type": "int"},
                    {"name": "tags", "type": {"type": "array", "items": "string"}},
                    {"name": "c", "type": "Color"},
                ],
            },
        },
        {"name": "inners", "type": {"type": "array", "items": "Inner"}},
        {"name": "scores", "type": {"type": "map", "values": ["null", "double"]}},
        {"name": "nulls", "type": {"type": "array", "items": "null"}},
        {"name": "opt_s", "type": ["null", "string"]},
        {"name": "opt_i_last", "type": ["int", "null"]},
        {"name": "opt_color", "type": ["null", "Color"]},
        {"name": "multi", "type": ["null", "int", "string", "Inner", "Digest"]},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "amount", "type": MONEY},
        {"name": "opt_id", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
        {
            "name": "list",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Node",
                    "fields": [
                        {"name": "value", "type": "long"},
                        {"name": "next", "type": ["null", "Node"]},
                    ],
                },
            ],
        },
    ],
}
RICH_PARSED = fastavro.parse_schema(RICH)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The validator is stricter than fastavro on purpose in these (documented) respects only.
STRICTER = ("union index", "enum index", "varint", "boolean", "block of", "zero-width")


def _times() -> st.SearchStrategy[datetime.datetime]:
    return st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30))


def _nodes(depth: int = 0) -> st.SearchStrategy[Any]:
    if depth > 3:
        return st.none()
    return st.one_of(
        st.none(), st.fixed_dictionaries({"value": st.integers(-(2**63), 2**63 - 1), "next": _nodes(depth + 1)})
    )


INNER = st.fixed_dictionaries(
    {
        "a": st.integers(-(2**31), 2**31 - 1),
        "tags": st.lists(st.text(max_size=6), max_size=3),
        "c": st.sampled_from(COLOR["symbols"]),
    }
)
RECORDS = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"event_id": st.uuids(), "event_time": _times().map(lambda d: d.replace(tzinfo=UTC))}
        ),
        "nothing": st.none(),
        "flag": st.booleans(),
        "i": st.integers(-(2**31), 2**31 - 1),
        "l": st.integers(-(2**63), 2**63 - 1),
        "f": st.floats(width=32),
        "d": st.floats(),
        "raw": st.binary(max_size=20),
        "s": st.text(max_size=12),
        "color": st.sampled_from(COLOR["symbols"]),
        "digest": st.binary(min_size=4, max_size=4),
        "inner": INNER,
        "inners": st.lists(INNER, max_size=3),
        "scores": st.dictionaries(st.text(max_size=4), st.one_of(st.none(), st.floats()), max_size=3),
        "nulls": st.lists(st.none(), max_size=3),
        "opt_s": st.one_of(st.none(), st.text(max_size=8)),
        "opt_i_last": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        "opt_color": st.one_of(st.none(), st.sampled_from(COLOR["symbols"])),
        "multi": st.one_of(
            st.none(), st.integers(-5, 5), st.text(max_size=4), INNER, st.binary(min_size=4, max_size=4)
        ),
        "ts_us": _times().map(lambda d: d.replace(tzinfo=UTC)),
        "local_ms": _times(),
        "day": st.dates(),
        "t_ms": st.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
        "t_us": st.times(),
        "amount": st.decimals(min_value=-9999999, max_value=9999999, places=2, allow_nan=False, allow_infinity=False),
        "opt_id": st.one_of(st.none(), st.uuids()),
        "list": _nodes(),
    }
)


def _write(parsed: Any, record: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def _fastavro_accepts(parsed: Any, body: bytes) -> bool:
    buffer = io.BytesIO(body)
    try:
        fastavro.schemaless_reader(buffer, parsed, None)
    except Exception:  # whatever fastavro raises counts as a rejection
        return False
    return buffer.tell() == len(body)


def _rejection(parsed: Any, body: bytes) -> InvalidBody | None:
    try:
        validator_for(parsed)(body)
    except InvalidBody as error:
        return error
    return None


def _check_against_fastavro(parsed: Any, body: bytes) -> None:
    """Accepted bodies read with fastavro to the end; rejected ones do not, unless the validator names one of its
    deliberate strictnesses (fastavro is then not asked: it may build billions of empty items)."""
    rejected = _rejection(parsed, body)
    if rejected is None:
        assert _fastavro_accepts(parsed, body), body
    elif not any(word in str(rejected) for word in STRICTER):
        assert not _fastavro_accepts(parsed, body), (body, rejected)


@FAST
@given(record=RECORDS, data=st.data())
def test_bodies_are_accepted_and_corruptions_rejected_like_fastavro(
    record: dict[str, Any], data: st.DataObject
) -> None:
    body = _write(RICH_PARSED, record)
    validator_for(RICH_PARSED)(body)
    event_id, event_ms = metadata_validator_for(RICH_PARSED)(b"\x00\x00\x00\x00\x07" + body, 5)
    assert event_id == str(record["metadata"]["event_id"])
    decoded = fastavro.schemaless_reader(io.BytesIO(body), RICH_PARSED, None)
    assert millis_to_datetime(event_ms) == decoded["metadata"]["event_time"]  # type: ignore[call-overload,index]
    position = data.draw(st.integers(0, len(body) - 1))
    flipped = body[:position] + bytes([body[position] ^ data.draw(st.integers(1, 255))]) + body[position + 1 :]
    inserted = body[:position] + data.draw(st.binary(min_size=1, max_size=3)) + body[position:]
    for corrupted in (flipped, inserted, body[:position] + body[position + 1 :]):
        _check_against_fastavro(RICH_PARSED, corrupted)


@FAST
@given(record=RECORDS, cut=st.integers(1, 10_000), tail=st.binary(min_size=1, max_size=8))
def test_truncations_and_trailing_bytes_are_always_rejected(record: dict[str, Any], cut: int, tail: bytes) -> None:
    body = _write(RICH_PARSED, record)
    with pytest.raises(InvalidBody):
        validator_for(RICH_PARSED)(body[: max(len(body) - cut, 0)])
    with pytest.raises(InvalidBody, match="trailing"):
        validator_for(RICH_PARSED)(body + tail)


@FAST
@given(body=st.binary(max_size=200))
def test_random_bytes_are_rejected_where_fastavro_rejects(body: bytes) -> None:
    _check_against_fastavro(RICH_PARSED, body)


@pytest.mark.parametrize("name", [n for n in sorted(all_schema_names()) if example_path(n).exists()])
def test_contract_examples_pass_and_their_truncations_fail(name: str) -> None:
    parsed = fastavro.parse_schema(load_schema(name))
    body = _write(parsed, example(name))
    validator_for(parsed)(body)
    if starts_with_metadata(parsed):
        event_id, _ = metadata_validator_for(parsed)(body)
        assert event_id == str(example(name)["metadata"]["event_id"])
    for cut in range(len(body)):
        with pytest.raises(InvalidBody):
            validator_for(parsed)(body[:cut])
    with pytest.raises(InvalidBody):
        validator_for(parsed)(body + b"\x00")


@pytest.mark.parametrize(
    ("schema", "body", "reason"),
    [
        (["null", "string"], b"\x04\x02a", "union index 2"),
        (["null", "string"], b"\x03", "union index -2"),
        (COLOR, b"\x06", "enum index 3"),
        ("boolean", b"\x02", "boolean"),
        ("int", b"\xff\xff\xff\xff\x7f", "varint"),
        ("long", b"\xff" * 10 + b"\x01", "varint"),
        ("string", b"\x02\xff", "UTF-8"),
        ("string", b"\x03", "truncated"),
        ({"type": "string", "logicalType": "uuid"}, b"\x06abc", "uuid"),
        ({"type": "long", "logicalType": "timestamp-millis"}, b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", "timestamp"),
        ({"type": "int", "logicalType": "date"}, b"\xfe\xff\xff\xff\x0f", "date"),
        ({"type": "int", "logicalType": "time-millis"}, b"\x80\xb6\xc4\x52", "time-millis"),
        ({"type": "array", "items": "long"}, b"\x06\x02\x00", "truncated"),
        ({"type": "array", "items": "long"}, b"\xfe\xff\xff\xff\x0f\x00", "items"),
        ({"type": "map", "values": "long"}, b"\x02\x02\xc3\x02\x00", "UTF-8"),
        ("double", b"\x00" * 7, "truncated"),
        ({"type": "fixed", "name": "F", "size": 3}, b"\x00\x00", "truncated"),
    ],
)
def test_reasons_name_what_is_wrong(schema: Any, body: bytes, reason: str) -> None:
    with pytest.raises(InvalidBody, match=reason):
        validator_for(fastavro.parse_schema(schema))(body)


def test_invalid_bodies_are_undecodable_records_for_dead_letters() -> None:
    assert issubclass(InvalidBody, UndecodableRecord)


def test_the_wire_header_is_skipped_in_place_and_sources_are_cached() -> None:
    parsed = fastavro.parse_schema({"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]})
    validator_for(parsed)(b"\x00\x00\x00\x00\x01\x02", 5)
    assert validator_for(parsed) is validator_for(parsed)
    assert "def check_value" in generated_source(parsed)


def test_decimal_and_uuid_edge_cases_follow_fastavro() -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
                {"name": "amount", "type": MONEY},
            ],
        }
    )
    braces = "{" + str(uuid.uuid4()) + "}"
    body = b"".join([bytes([len(braces) * 2]), braces.encode(), b"\x02\x05"])
    assert _fastavro_accepts(parsed, body)
    validator_for(parsed)(body)
    assert _write(parsed, {"id": uuid.uuid4(), "amount": Decimal("1.25")})
