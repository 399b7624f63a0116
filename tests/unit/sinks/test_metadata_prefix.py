"""The metadata prefix reader agrees with a full decode, and refuses what cannot be that prefix."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import fastavro
import pytest

from schemas.catalogue import example, load_schema
from services.common.serde import HEADER, MAGIC_BYTE
from services.common.sinks.records import (
    HourPartitions,
    PrefixError,
    event_id_of,
    event_time_of,
    hour_partition,
    millis_to_datetime,
    read_metadata_prefix,
    starts_with_metadata,
)

VIEW = "com.freightline.web.ProductView"


def _wire(schema: Any, record: dict[str, Any], schema_id: int = 7) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return HEADER.pack(MAGIC_BYTE, schema_id) + buffer.getvalue()


@pytest.mark.parametrize("millis", [0, 1, 1_793_607_300_123, -5, 2**45])
def test_prefix_matches_the_full_decode(millis: int) -> None:
    schema = fastavro.parse_schema(load_schema(VIEW))
    assert starts_with_metadata(schema)
    record = example(VIEW)
    record["metadata"]["event_time"] = millis
    data = _wire(schema, record)
    decoded = fastavro.schemaless_reader(io.BytesIO(data[HEADER.size :]), schema)
    event_id, event_millis = read_metadata_prefix(data)
    assert event_id == event_id_of(decoded, "t", 0, 0)  # type: ignore[arg-type]
    assert event_millis == millis
    assert millis_to_datetime(event_millis) == event_time_of(decoded, None)  # type: ignore[arg-type]


def test_schemas_without_the_envelope_are_decoded_in_full() -> None:
    plain = fastavro.parse_schema(
        {"type": "record", "name": "P", "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "long"}]}
    )
    assert not starts_with_metadata(plain)
    micros = fastavro.parse_schema(
        {
            "type": "record",
            "name": "M",
            "fields": [
                {
                    "name": "metadata",
                    "type": {
                        "type": "record",
                        "name": "Meta",
                        "fields": [
                            {"name": "event_id", "type": "string"},
                            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                        ],
                    },
                }
            ],
        }
    )
    assert not starts_with_metadata(micros)
    assert not starts_with_metadata("string")


@pytest.mark.parametrize(
    "body",
    [
        b"",  # nothing after the header
        b"\x7f",  # a string longer than the payload
        b"\x01",  # a negative length
        b"\x04\xff\xfe",  # not UTF-8
        b"\x02a",  # no event time
        b"\x02a" + b"\xff" * 12,  # an endless varint
    ],
)
def test_bytes_that_cannot_be_the_prefix_raise(body: bytes) -> None:
    with pytest.raises(PrefixError):
        read_metadata_prefix(HEADER.pack(MAGIC_BYTE, 1) + body)


def test_hour_partitions_are_memoised_per_hour() -> None:
    hours = HourPartitions()
    base = dt.datetime(2026, 11, 2, 7, 59, 58, tzinfo=dt.UTC)
    for seconds in (0, 1, 2, 3600, 86_400):
        when = base + dt.timedelta(seconds=seconds)
        assert hours(when) == hour_partition(when)
    other_zone = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert hours(other_zone) == ("dt=2026-11-02", "hour=07")
