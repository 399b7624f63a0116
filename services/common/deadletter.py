"""Dead letters: records a service cannot process, kept with the error and the original bytes.

A dead letter is an Avro ``com.freightline.common.DeadLetter`` record on ``<source topic>.dlq`` (the
catalogue's convention), keyed by the original key, carrying the original key, value and headers untouched,
where the record came from (topic, partition, offset, timestamp), what went wrong and which service saw it.
It is produced through the service's own producer, so it is durable before the source offset is committed.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import Message

from services.common.kafka import Producer, headers_of
from services.common.metrics import ServiceMetrics
from services.common.serde import AvroSerde, Encoder, SerdeError, subject_for

log = logging.getLogger(__name__)

DEAD_LETTER_SCHEMA = "com.freightline.common.DeadLetter"
ERROR_TYPE_HEADER = "freightline.error.type"


def dead_letter_topic(source_topic: str) -> str:
    return f"{source_topic}.dlq"


class PoisonRecord(Exception):
    """Raised by processing code for a record that can never succeed (invalid values, missing fields)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


# What pure record-handling code raises for a record that is well formed Avro but cannot be processed (a
# missing field, a wrong type, an impossible value): every service dead-letters these as ``invalid_record``.
INVALID_RECORD: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError)
# Everything a service dead-letters instead of failing: records that do not decode, poison records, invalid ones.
UNPROCESSABLE: tuple[type[Exception], ...] = (SerdeError, PoisonRecord, *INVALID_RECORD)


def error_kind(error: BaseException | str, error_type: str | None = None) -> str:
    """The dead letter's ``error_type``: the one given, else the error's own ``kind`` (serde errors) or
    ``error_type`` (poison records), else ``invalid_record`` for ``INVALID_RECORD`` errors, else the class name."""
    if error_type:
        return error_type
    if isinstance(error, str):
        return "error"
    kind = getattr(error, "kind", None) or getattr(error, "error_type", None)
    if kind:
        return str(kind)
    return "invalid_record" if isinstance(error, INVALID_RECORD) else type(error).__name__


def envelope(
    message: Message,
    error: BaseException | str,
    *,
    service: str,
    error_type: str | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The DeadLetter record for ``message`` (pure: no I/O)."""
    key = message.key()
    timestamp_type, timestamp = message.timestamp()
    kind = error_kind(error, error_type)
    if isinstance(error, BaseException):
        text = str(error)
        stack = "".join(traceback.format_exception(error)) if error.__traceback__ else None
    else:
        text, stack = error, None
    return {
        "original_key": key.encode() if isinstance(key, str) else key,
        "original_value": message.value(),
        "original_headers": [{"key": k, "value": v} for k, v in headers_of(message)],
        "source_topic": message.topic() or "",
        "source_partition": int(message.partition() or 0),
        "source_offset": int(message.offset() or 0),
        "source_timestamp": timestamp if timestamp_type != 0 and timestamp >= 0 else None,
        "error_type": kind,
        "error_message": text[:10_000],
        "error_stack": stack[:20_000] if stack else None,
        "service": service,
        "failed_at": now_ms if now_ms is not None else int(time.time() * 1000),
        "attempts": 1,
    }


class DeadLetterPublisher:
    """Publishes dead letters through a service's producer, so they are flushed before each commit."""

    def __init__(
        self,
        producer: Producer,
        serde: AvroSerde,
        *,
        service: str,
        metrics: ServiceMetrics | None = None,
        topic_for: Callable[[str], str] = dead_letter_topic,
        schema: dict[str, Any] | None = None,
    ) -> None:
        if schema is None:
            from schemas.catalogue import load_schema

            schema = load_schema(DEAD_LETTER_SCHEMA)
        self.producer = producer
        self.serde = serde
        self.service = service
        self.metrics = metrics
        self.topic_for = topic_for
        self._schema = schema
        self._encoders: dict[str, Encoder] = {}
        self.published = 0

    def _encoder(self, topic: str) -> Encoder:
        encoder = self._encoders.get(topic)
        if encoder is None:
            encoder = self.serde.encoder(subject_for(topic), self._schema)
            self._encoders[topic] = encoder
        return encoder

    def publish(self, message: Message, error: BaseException | str, error_type: str | None = None) -> None:
        record = envelope(message, error, service=self.service, error_type=error_type)
        topic = self.topic_for(record["source_topic"])
        headers = [(ERROR_TYPE_HEADER, record["error_type"].encode())]
        self.producer.produce(topic, self._encoder(topic).encode(record), message.key(), headers=headers)
        self.published += 1
        log.warning(
            "dead-lettered %s[%d]@%d to %s: %s: %s",
            record["source_topic"],
            record["source_partition"],
            record["source_offset"],
            topic,
            record["error_type"],
            record["error_message"][:200],
        )
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.service, record["source_topic"], record["error_type"]).inc()
            self.metrics.record_in(record["source_topic"], "dead_lettered")


def decoded(
    batch: Iterable[Message], serde: AvroSerde, dead_letters: DeadLetterPublisher
) -> Iterator[tuple[Message, dict[str, Any]]]:
    """The batch's records that decode as their topic's contract, with their values; the others (records of
    another contract among them: ``wrong_contract``) go to their dead-letter topic."""
    for message in batch:
        try:
            value = serde.decode(message.value(), topic=message.topic() or "")
        except SerdeError as error:
            dead_letters.publish(message, error)
            continue
        yield message, value
