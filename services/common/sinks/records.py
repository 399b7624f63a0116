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


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One decoded record with where it came from; ``body`` is its Avro binary body (no wire header)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    schema_id: int
    value: dict[str, Any]
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
