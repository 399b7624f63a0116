from __future__ import annotations

import json
from typing import Any

import pytest

from services.common.registry import RegisteredSchema, Schema, SchemaRegistryError
from services.common.serde import (
    AvroSerde,
    InvalidRecord,
    UndecodableRecord,
    UnknownSchema,
    WrongContract,
    schema_id_of,
    subject_for,
    with_schema_id,
)

SCHEMA = {
    "type": "record",
    "name": "Ping",
    "namespace": "test",
    "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "long"}],
}


class InMemoryRegistry:
    """A stand-in for unit tests of the serde's pure logic (the real registry is used in integration tests)."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[int, set[str]] = {}
        self.lookups = 0
        self.subject_lookups = 0

    def register_schema(self, subject_name: str, schema: Schema, *args: Any, **kwargs: Any) -> int:
        for schema_id, text in self.schemas.items():
            if text == schema.schema_str:
                self.subjects[schema_id].add(subject_name)
                return schema_id
        schema_id = len(self.schemas) + 1
        self.schemas[schema_id] = schema.schema_str or ""
        self.subjects[schema_id] = {subject_name}
        return schema_id

    def get_subjects_by_schema_id(
        self, schema_id: int, subject_name: str | None = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        self.subject_lookups += 1
        found = sorted(self.subjects.get(schema_id, set()))
        return [s for s in found if subject_name is None or s == subject_name]

    def lookup_schema(self, subject_name: str, schema: Schema, *args: Any, **kwargs: Any) -> RegisteredSchema:
        schema_id = self.register_schema(subject_name, schema)
        return RegisteredSchema(schema_id=schema_id, schema=schema, subject=subject_name, version=1)

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        self.lookups += 1
        if schema_id not in self.schemas:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return Schema(self.schemas[schema_id], "AVRO")


def test_round_trip_and_header() -> None:
    serde = AvroSerde(InMemoryRegistry())
    encoder = serde.encoder("t-value", SCHEMA)
    data = encoder.encode({"id": "a", "n": 7})
    assert data[0] == 0
    assert schema_id_of(data) == encoder.schema_id == 1
    assert serde.decode(data) == {"id": "a", "n": 7}


def test_writer_schema_fetched_once_per_id() -> None:
    registry = InMemoryRegistry()
    registry.schemas[42] = json.dumps(SCHEMA)
    producer_side = AvroSerde(registry)
    consumer_side = AvroSerde(registry)
    payload = with_schema_id(producer_side.encoder("s", SCHEMA).encode({"id": "x", "n": 1}), 42)
    for _ in range(5):
        assert consumer_side.decode(payload)["id"] == "x"
    assert registry.lookups == 1


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00\x00", b"\x01\x00\x00\x00\x01abc", b"not avro at all"],
)
def test_undecodable_payloads(payload: bytes) -> None:
    with pytest.raises(UndecodableRecord):
        AvroSerde(InMemoryRegistry()).decode(payload)


def test_none_is_undecodable() -> None:
    with pytest.raises(UndecodableRecord):
        AvroSerde(InMemoryRegistry()).decode(None)


def test_unknown_schema_id() -> None:
    with pytest.raises(UnknownSchema):
        AvroSerde(InMemoryRegistry()).decode(b"\x00\x00\x00\x00\x09\x02a\x02")


def test_a_record_of_another_contract_is_refused_on_the_topic_and_the_registry_asked_once() -> None:
    registry = InMemoryRegistry()
    serde = AvroSerde(registry)
    ours = serde.encoder(subject_for("views"), SCHEMA).encode({"id": "a", "n": 1})
    other = serde.encoder(subject_for("clicks"), {**SCHEMA, "name": "Pong"}).encode({"id": "b", "n": 2})
    for _ in range(3):
        assert serde.decode(ours, topic="views")["id"] == "a"
        with pytest.raises(WrongContract, match=r"views-value \(registered under clicks-value"):
            serde.decode(other, topic="views")
    assert serde.decode(other)["id"] == "b"  # no topic: no contract check
    assert serde.decode(other, topic="clicks")["id"] == "b"
    assert registry.subject_lookups == 4  # (ours, views), (other, views) and its subjects, (other, clicks)


def test_trailing_bytes_are_rejected() -> None:
    serde = AvroSerde(InMemoryRegistry())
    data = serde.encoder("s", SCHEMA).encode({"id": "a", "n": 1})
    with pytest.raises(UndecodableRecord, match="trailing"):
        serde.decode(data + b"\x00")


def test_invalid_record_is_reported() -> None:
    encoder = AvroSerde(InMemoryRegistry()).encoder("s", SCHEMA)
    with pytest.raises(InvalidRecord):
        encoder.encode({"id": "a", "n": "not a number"})


def test_with_schema_id_rewrites_only_the_header() -> None:
    serde = AvroSerde(InMemoryRegistry())
    data = serde.encoder("s", SCHEMA).encode({"id": "a", "n": 1})
    rewritten = with_schema_id(data, 99)
    assert schema_id_of(rewritten) == 99
    assert rewritten[5:] == data[5:]


def test_subject_naming() -> None:
    assert subject_for("commerce.orders.v1") == "commerce.orders.v1-value"
