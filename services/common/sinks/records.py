"""Decoded records as sinks see them, and the pure helpers that turn Kafka messages into them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from confluent_kafka import Message

from services.common.serde import HEADER

UTC = dt.UTC


@dataclass(slots=True)
class SinkRecord:
    """One decoded record with where it came from; ``body`` is its Avro binary body (no wire header).

    Treated as immutable; not declared frozen because a frozen dataclass costs several times more to build, and
    sinks build one per Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    schema_id: int
    value: dict[str, Any] | None  # None when only the metadata prefix was read (see ``read_metadata_prefix``)
    event_id: str
    event_time: dt.datetime
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)


def raw_body(value: bytes) -> bytes:
    """The Avro binary body of a wire-format payload (its 5-byte header removed)."""
    return value[HEADER.size :]


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int):
        return dt.datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def event_id_of(value: Mapping[str, Any], topic: str, partition: int, offset: int) -> str:
    """``metadata.event_id`` when present, else the record's Kafka coordinates (unique per record)."""
    metadata = value.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("event_id") is not None:
        return str(metadata["event_id"])
    return f"{topic}+{partition}+{offset}"


def event_time_of(value: Mapping[str, Any], kafka_timestamp_ms: int | None) -> dt.datetime:
    """``metadata.event_time`` when present, else the Kafka timestamp, else now (all UTC)."""
    metadata = value.get("metadata")
    if isinstance(metadata, Mapping):
        found = _as_datetime(metadata.get("event_time"))
        if found is not None:
            return found
    if kafka_timestamp_ms is not None and kafka_timestamp_ms >= 0:
        return dt.datetime.fromtimestamp(kafka_timestamp_ms / 1000, tz=UTC)
    return dt.datetime.now(tz=UTC)


def kafka_timestamp(message: Message) -> int | None:
    kind, value = message.timestamp()
    return value if kind != 0 and value >= 0 else None


def hour_partition(event_time: dt.datetime) -> tuple[str, str]:
    """(``dt=YYYY-MM-DD``, ``hour=HH``) of an event time, in UTC."""
    utc = event_time.astimezone(UTC)
    return f"dt={utc:%Y-%m-%d}", f"hour={utc:%H}"


class HourPartitions:
    """``hour_partition`` memoised per UTC hour (a batch spans few hours but many records)."""

    def __init__(self) -> None:
        self._by_hour: dict[tuple[int, int, int, int], tuple[str, str]] = {}

    def __call__(self, event_time: dt.datetime) -> tuple[str, str]:
        utc = event_time if event_time.tzinfo is UTC else event_time.astimezone(UTC)
        key = (utc.year, utc.month, utc.day, utc.hour)
        found = self._by_hour.get(key)
        if found is None:
            found = self._by_hour[key] = hour_partition(utc)
        return found


def plain(value: Any) -> Any:
    """A decoded Avro value with UUIDs as strings and dates as ISO strings (JSON- and BSON-friendly)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return value
    return value


# -- the metadata prefix ----------------------------------------------------------------------------------
# Every event contract starts with ``metadata`` (event_id string, event_time timestamp-millis long, ...), so a
# record's Avro body starts with a length-prefixed string and a zigzag varint. Sinks that keep the original bytes
# (the file sinks) need only these two values: reading them is much cheaper than decoding the whole record.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _type_name(schema: Any) -> Any:
    return schema.get("type") if isinstance(schema, Mapping) else schema


def starts_with_metadata(schema: Any) -> bool:
    """True when a parsed writer schema's body starts with ``metadata.event_id`` (string) and
    ``metadata.event_time`` (long, timestamp-millis)."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        return False
    fields = schema.get("fields") or []
    if not fields or fields[0].get("name") != "metadata":
        return False
    metadata = fields[0].get("type")
    if not isinstance(metadata, Mapping) or metadata.get("type") != "record":
        return False
    inner = metadata.get("fields") or []
    if len(inner) < 2 or inner[0].get("name") != "event_id" or inner[1].get("name") != "event_time":
        return False
    event_time = inner[1].get("type")
    return (
        _type_name(inner[0].get("type")) == "string"
        and isinstance(event_time, Mapping)
        and event_time.get("type") == "long"
        and event_time.get("logicalType") == "timestamp-millis"
    )


class PrefixError(ValueError):
    """The body does not start with a readable metadata prefix."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro zig-zag varint at ``pos``: (value, position after it)."""
    byte = data[pos]
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if shift > 70:
            raise PrefixError("varint longer than 10 bytes")
    return (n >> 1) ^ -(n & 1), pos


def read_metadata_prefix(data: bytes, pos: int = HEADER.size) -> tuple[str, int]:
    """(event_id, event_time in epoch milliseconds) from the start of a wire-format payload whose writer schema
    ``starts_with_metadata``; raises ``PrefixError`` when the bytes cannot be that prefix."""
    try:
        length, pos = _varint(data, pos)
        end = pos + length
        if length < 0 or end > len(data):
            raise PrefixError(f"string of {length} bytes does not fit the payload")
        event_id = data[pos:end].decode()
        event_time, _ = _varint(data, end)
    except (IndexError, UnicodeDecodeError) as error:
        raise PrefixError(str(error)) from error
    return event_id, event_time


def read_metadata_times(data: bytes, pos: int = HEADER.size) -> tuple[str, int, int]:
    """(event_id, event_time, ingest_time in epoch milliseconds) from the start of a wire-format payload whose
    writer schema ``starts_with_metadata``; raises ``PrefixError`` when the bytes cannot be that prefix."""
    event_id, event_time = read_metadata_prefix(data, pos)
    try:
        pos = _skip_string_and_long(data, pos)
        ingest_time, _ = _varint(data, pos)
    except IndexError as error:
        raise PrefixError(str(error)) from error
    return event_id, event_time, ingest_time


def _skip_string_and_long(data: bytes, pos: int) -> int:
    length, pos = _varint(data, pos)
    pos += length
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def millis_to_datetime(millis: int) -> dt.datetime:
    """An epoch-milliseconds timestamp as an aware UTC datetime (as Avro's timestamp-millis decodes)."""
    return EPOCH + dt.timedelta(milliseconds=millis)
