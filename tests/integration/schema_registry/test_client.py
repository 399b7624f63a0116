"""confluent-kafka's own SchemaRegistryClient and Avro serdes against the registry."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.schema_registry_client import ConfigCompatibilityLevel, ServerConfig
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.registry import RegistryProcess

pytestmark = pytest.mark.integration


def record(name: str, *fields: tuple[str, Any], namespace: str = "com.freightline.test") -> str:
    body: dict[str, Any] = {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "fields": [{"name": n, "type": t} for n, t in fields],
    }
    return json.dumps(body)


V1 = record("Shipment", ("id", "string"), ("weight", "int"))
V2 = json.dumps(
    {
        "type": "record",
        "name": "Shipment",
        "namespace": "com.freightline.test",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "weight", "type": "long"},
            {"name": "carrier", "type": ["null", "string"], "default": None},
        ],
    }
)
BAD = record("Shipment", ("id", "string"), ("weight", "int"), ("required", "string"))


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient({"url": registry.url})
    yield sr
    sr.close()


@pytest.fixture
def isolated_client(start_registry: Callable[..., RegistryProcess]) -> Iterator[SchemaRegistryClient]:
    """A client of a registry of its own: for tests that change global config or mode."""
    sr = SchemaRegistryClient({"url": start_registry().url})
    yield sr
    sr.close()


def test_register_get_lookup(client: SchemaRegistryClient, subject: str) -> None:
    schema_id = client.register_schema(subject, Schema(V1, "AVRO"))
    assert client.register_schema(subject, Schema(V1, "AVRO")) == schema_id
    full = client.register_schema_full_response(subject, Schema(V2, "AVRO"))
    assert full.schema_id is not None and full.schema_id != schema_id
    assert full.version == 2

    fetched = client.get_schema(schema_id)
    assert json.loads(fetched.schema_str or "") == json.loads(V1)
    assert fetched.schema_type == "AVRO"

    assert "AVRO" in client.get_schema_types()
    assert subject in client.get_subjects()
    assert subject in client.get_subjects(subject_prefix=subject[:10])
    assert client.get_subjects(subject_prefix="no-such-prefix-") == []
    assert client.get_versions(subject) == [1, 2]
    assert client.get_subjects_by_schema_id(schema_id) == [subject]
    assert [(v.subject, v.version) for v in client.get_schema_versions(schema_id)] == [(subject, 1)]

    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id, latest.subject) == (2, full.schema_id, subject)
    first = client.get_version(subject, 1)
    assert (first.version, first.schema_id) == (1, schema_id)

    found = client.lookup_schema(subject, Schema(V1, "AVRO"))
    assert (found.schema_id, found.version, found.subject) == (schema_id, 1, subject)
    with pytest.raises(SchemaRegistryError) as missing:
        client.lookup_schema(subject, Schema(record("Other", ("x", "int")), "AVRO"))
    assert missing.value.error_code == 40403

    guid = full.guid
    if guid is not None:
        assert json.loads(client.get_schema_by_guid(guid).schema_str or "") == json.loads(V2)


def test_same_schema_same_id_across_subjects(client: SchemaRegistryClient, subject: str) -> None:
    text = record("Shared", ("k", "string"))
    first = client.register_schema(subject, Schema(text, "AVRO"))
    # Whitespace and attribute order do not change the identity of a schema.
    reordered = json.dumps(json.loads(text), indent=2, sort_keys=True)
    second = client.register_schema(subject + "-other", Schema(reordered, "AVRO"))
    assert first == second
    assert sorted(client.get_subjects_by_schema_id(first)) == sorted([subject, subject + "-other"])


def test_incompatible_schema_is_refused(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(V1, "AVRO"))
    assert client.test_compatibility(subject, Schema(V2, "AVRO")) is True
    assert client.test_compatibility(subject, Schema(BAD, "AVRO"), version=1) is False
    assert client.test_compatibility_all_versions(subject, Schema(BAD, "AVRO")) is False
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(BAD, "AVRO"))
    assert refused.value.http_status_code == 409
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in refused.value.error_message


def test_subject_compatibility_and_config(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(V1, "AVRO"))
    client.set_compatibility(subject, "NONE")
    assert client.get_compatibility(subject) == "NONE"
    client.register_schema(subject, Schema(BAD, "AVRO"))  # allowed under NONE

    client.set_config(subject, ServerConfig(compatibility=ConfigCompatibilityLevel.FULL))
    assert client.get_config(subject).compatibility_level == "FULL"
    deleted = client.delete_config(subject)
    assert deleted.compatibility_level == "FULL"
    with pytest.raises(SchemaRegistryError) as not_configured:
        client.get_compatibility(subject)
    assert not_configured.value.error_code == 40408


def test_delete_versions_and_subjects(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(V1, "AVRO"))
    client.register_schema(subject, Schema(V2, "AVRO"))
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert client.get_versions(subject, deleted=True) == [1, 2]
    assert client.get_version(subject, 2, deleted=True).version == 2
    assert client.delete_version(subject, 2, permanent=True) == 2
    assert client.get_versions(subject, deleted=True) == [1]

    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    with pytest.raises(SchemaRegistryError) as soft:
        client.delete_subject(subject)
    assert soft.value.error_code == 40404
    assert client.delete_subject(subject, permanent=True) == [1]
    assert subject not in client.get_subjects(deleted=True)
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_versions(subject)
    assert gone.value.error_code == 40401


def test_references(client: SchemaRegistryClient, subject: str) -> None:
    address_subject = subject + "-address"
    address = record("Address", ("city", "string"))
    client.register_schema(address_subject, Schema(address, "AVRO"))
    order = record("Order", ("id", "string"), ("ship_to", "com.freightline.test.Address"))
    refs = [SchemaReference("com.freightline.test.Address", address_subject, 1)]
    order_id = client.register_schema(subject, Schema(order, "AVRO", refs))
    assert client.get_referenced_by(address_subject, 1) == [order_id]
    fetched = client.get_schema(order_id)
    assert [(r.name, r.subject, r.version) for r in fetched.references or []] == [
        ("com.freightline.test.Address", address_subject, 1)
    ]
    with pytest.raises(SchemaRegistryError) as referenced:
        client.delete_subject(address_subject)
    assert referenced.value.error_code == 42206


def test_subject_mode(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(V1, "AVRO"))
    assert client.update_mode(subject, "READONLY") == "READONLY"
    assert client.get_mode(subject) == "READONLY"
    with pytest.raises(SchemaRegistryError) as readonly:
        client.register_schema(subject, Schema(V2, "AVRO"))
    assert readonly.value.error_code == 42205
    assert client.delete_mode(subject) == "READONLY"
    client.register_schema(subject, Schema(V2, "AVRO"))


def test_global_config_and_mode(isolated_client: SchemaRegistryClient) -> None:
    client = isolated_client
    assert client.get_compatibility() == "BACKWARD"
    assert client.set_compatibility(level="FULL_TRANSITIVE") == {"compatibility": "FULL_TRANSITIVE"}
    assert client.get_config().compatibility_level == "FULL_TRANSITIVE"
    assert client.delete_config().compatibility_level == "FULL_TRANSITIVE"
    assert client.get_compatibility() == "BACKWARD"

    assert client.get_global_mode() == "READWRITE"
    assert client.update_global_mode("IMPORT") == "IMPORT"
    # IMPORT mode: the caller chooses ids and versions (as when migrating from another registry).
    response = client._rest_client.post(
        "subjects/imported-value/versions", body={"schema": V1, "id": 1000, "version": 7}
    )
    assert response["id"] == 1000
    assert client.get_version("imported-value", 7).schema_id == 1000
    assert client.update_global_mode("READONLY") == "READONLY"
    with pytest.raises(SchemaRegistryError) as readonly:
        client.register_schema("other-value", Schema(V1, "AVRO"))
    assert readonly.value.error_code == 42205
    with pytest.raises(SchemaRegistryError) as import_refused:
        client.update_global_mode("IMPORT")
    assert import_refused.value.error_code == 42205
    assert client.update_global_mode("READWRITE") == "READWRITE"
    assert client.get_contexts() == ["."]


def test_avro_serde_round_trip(registry: RegistryProcess, subject: str) -> None:
    topic = subject.removesuffix("-value")
    conf = {"url": registry.url}
    with SchemaRegistryClient(conf) as writer_client, SchemaRegistryClient(conf) as reader_client:
        serializer = AvroSerializer(
            writer_client,
            V2,
            conf={"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy},
        )
        deserializer = AvroDeserializer(reader_client, conf={"subject.name.strategy": topic_subject_name_strategy})
        ctx = SerializationContext(topic, MessageField.VALUE)
        value = {"id": "S-1", "weight": 12_000_000_000, "carrier": "DHL"}
        payload = serializer(value, ctx)
        assert payload is not None and payload[0] == 0
        assert deserializer(payload, ctx) == value
        registered = writer_client.get_latest_version(f"{topic}-value")
        assert int.from_bytes(payload[1:5], "big") == registered.schema_id
