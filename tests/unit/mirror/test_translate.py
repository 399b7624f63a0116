"""Schema id translation (pure logic over in-memory stand-ins for the two registries)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.registry import Schema, SchemaRegistryError
from services.common.serde import HEADER, UndecodableRecord, UnknownSchema, schema_id_of
from services.mirror.translate import IncompatibleSchema, SchemaTranslator

SCHEMA = '{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}'


class MemoryRegistry:
    """Ids by schema text, global across subjects, like a Confluent registry."""

    def __init__(self, first_id: int = 1, refuse: bool = False) -> None:
        self.by_id: dict[int, str] = {}
        self.next_id = first_id
        self.refuse = refuse
        self.calls: list[tuple[str, Any]] = []

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        self.calls.append(("get", schema_id))
        if schema_id not in self.by_id:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return Schema(self.by_id[schema_id], "AVRO")

    def register_schema(self, subject_name: str, schema: Schema, *args: Any, **kwargs: Any) -> int:
        self.calls.append(("register", subject_name))
        if self.refuse:
            raise SchemaRegistryError(409, 409, "incompatible")
        for schema_id, text in self.by_id.items():
            if text == schema.schema_str:
                return schema_id
        schema_id, self.next_id = self.next_id, self.next_id + 1
        self.by_id[schema_id] = schema.schema_str or ""
        return schema_id

    def lookup_schema(self, subject_name: str, schema: Schema, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def get_subjects_by_schema_id(self, schema_id: int, *args: Any, **kwargs: Any) -> list[str]:
        raise NotImplementedError


def wire(schema_id: int, body: bytes = b"\x02\x04body") -> bytes:
    return HEADER.pack(0, schema_id) + body


def test_ids_are_rewritten_and_the_body_kept() -> None:
    source, destination = MemoryRegistry(), MemoryRegistry(first_id=100)
    source_id = source.register_schema("s-value", Schema(SCHEMA, "AVRO"))
    translator = SchemaTranslator(source, destination)
    out = translator.translate("dest-value", wire(source_id))
    assert schema_id_of(out) == 100
    assert out[HEADER.size :] == wire(source_id)[HEADER.size :]
    assert ("register", "dest-value") in destination.calls


def test_the_mapping_is_cached() -> None:
    source, destination = MemoryRegistry(), MemoryRegistry(first_id=7)
    source_id = source.register_schema("s-value", Schema(SCHEMA, "AVRO"))
    translator = SchemaTranslator(source, destination)
    for _ in range(100):
        translator.translate("dest-value", wire(source_id))
    assert [c for c in source.calls if c[0] == "get"] == [("get", source_id)]
    assert translator.registrations == 1


def test_one_registry_passes_ids_through_and_registers_the_destination_subject() -> None:
    registry = MemoryRegistry()
    schema_id = registry.register_schema("product_views-value", Schema(SCHEMA, "AVRO"))
    translator = SchemaTranslator(None, registry)
    assert translator.passthrough
    value = wire(schema_id)
    assert translator.translate("web.product_views.v1-value", value) is value
    assert ("register", "web.product_views.v1-value") in registry.calls


def test_one_registry_refusing_the_subject_still_passes_through() -> None:
    registry = MemoryRegistry()
    registry.by_id[3] = SCHEMA
    registry.refuse = True
    value = wire(3)
    assert SchemaTranslator(None, registry).translate("x-value", value) == value


def test_unknown_source_id_is_an_unknown_schema() -> None:
    with pytest.raises(UnknownSchema):
        SchemaTranslator(MemoryRegistry(), MemoryRegistry()).translate("d-value", wire(42))


def test_refused_registration_is_an_incompatible_schema() -> None:
    source = MemoryRegistry()
    source_id = source.register_schema("s-value", Schema(SCHEMA, "AVRO"))
    with pytest.raises(IncompatibleSchema):
        SchemaTranslator(source, MemoryRegistry(refuse=True)).translate("d-value", wire(source_id))


@pytest.mark.parametrize("value", [b"", b"\x01\x00\x00\x00\x01x", b"plain text"])
def test_values_not_in_the_wire_format_are_undecodable(value: bytes) -> None:
    with pytest.raises(UndecodableRecord):
        SchemaTranslator(MemoryRegistry(), MemoryRegistry()).translate("d-value", value)
