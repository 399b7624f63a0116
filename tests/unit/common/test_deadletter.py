from __future__ import annotations

from typing import Any

from services.common.deadletter import PoisonRecord, dead_letter_topic, envelope, error_kind
from services.common.serde import UndecodableRecord


class FakeMessage:
    """The few accessors of confluent_kafka.Message the envelope reads."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def key(self) -> Any:
        return self.fields.get("key")

    def value(self) -> Any:
        return self.fields.get("value")

    def headers(self) -> Any:
        return self.fields.get("headers")

    def topic(self) -> str:
        return "commerce.orders.v1"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def timestamp(self) -> tuple[int, int]:
        return self.fields.get("timestamp", (1, 1_700_000_000_000))


def test_envelope_keeps_original_bytes_and_origin() -> None:
    message = FakeMessage(key=b"k", value=b"\x00junk", headers=[("traceparent", b"00-abc")])
    try:
        raise UndecodableRecord("bad header")
    except UndecodableRecord as error:
        record = envelope(message, error, service="enricher", now_ms=5)  # type: ignore[arg-type]
    assert record["original_key"] == b"k"
    assert record["original_value"] == b"\x00junk"
    assert record["original_headers"] == [{"key": "traceparent", "value": b"00-abc"}]
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "commerce.orders.v1",
        2,
        41,
    )
    assert record["source_timestamp"] == 1_700_000_000_000
    assert record["error_type"] == "undecodable"
    assert "bad header" in record["error_message"]
    assert record["error_stack"] and "UndecodableRecord" in record["error_stack"]
    assert record["service"] == "enricher" and record["failed_at"] == 5 and record["attempts"] == 1


def test_envelope_for_poison_records_and_plain_reasons() -> None:
    message = FakeMessage(key="str-key", value=None, timestamp=(0, -1))
    record = envelope(message, PoisonRecord("invalid_value", "quantity < 0"), service="s")  # type: ignore[arg-type]
    assert record["error_type"] == "invalid_value"
    assert record["original_key"] == b"str-key"
    assert record["source_timestamp"] is None
    plain = envelope(message, "target refused it", service="s", error_type="rejected")  # type: ignore[arg-type]
    assert (plain["error_type"], plain["error_message"], plain["error_stack"]) == (
        "rejected",
        "target refused it",
        None,
    )


def test_envelope_matches_the_dead_letter_contract() -> None:
    import fastavro

    from schemas.catalogue import load_schema

    message = FakeMessage(key=b"k", value=b"v", headers=None)
    record = envelope(message, ValueError("x"), service="s")  # type: ignore[arg-type]
    parsed = fastavro.parse_schema(load_schema("com.freightline.common.DeadLetter"))
    assert fastavro.validate(record, parsed)


def test_dead_letter_topic_naming() -> None:
    assert dead_letter_topic("web.clickstream.v1") == "web.clickstream.v1.dlq"


def test_error_kinds_are_mapped_in_one_place() -> None:
    assert error_kind(UndecodableRecord("bad header")) == "undecodable"
    assert error_kind(PoisonRecord("invalid_value", "quantity < 0")) == "invalid_value"
    for invalid in (KeyError("sku"), TypeError("str"), ValueError("nan"), AttributeError("x"), ZeroDivisionError()):
        assert error_kind(invalid) == "invalid_record"
    assert error_kind(RuntimeError("boom")) == "RuntimeError"
    assert error_kind("target refused it") == "error"
    assert error_kind(KeyError("sku"), "rejected") == "rejected"
    message = FakeMessage(key="k", value=b"v", timestamp=(0, -1))
    assert envelope(message, KeyError("sku"), service="s")["error_type"] == "invalid_record"  # type: ignore[arg-type]
