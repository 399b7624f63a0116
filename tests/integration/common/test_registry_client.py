"""The services' own registry client (``services.common.registry``) against the stack's Schema Registry, checked
against what confluent-kafka's client reads from the same registry."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.registry import RegistryClient, Schema, SchemaRegistryError
from services.common.serde import AvroSerde, WrongContract, registry_client
from services.common.settings import SchemaRegistrySettings
from tests.integration.processes import free_port

RUN = uuid.uuid4().hex


def record(name: str, *fields: str) -> str:
    """A record schema of its own: ids are global, so a schema text registered by an earlier run has subjects."""
    return json.dumps(
        {
            "type": "record",
            "name": f"{name}_{RUN}",
            "namespace": "test.registry",
            "fields": [{"name": f, "type": "long"} for f in fields],
        }
    )


@pytest.fixture
def subject(unique_name: Callable[[str], str]) -> str:
    return unique_name("registry-client") + "-value"


def test_register_lookup_and_fetch_agree_with_confluent_kafka(registry_url: str, subject: str) -> None:
    client = registry_client(SchemaRegistrySettings(url=registry_url))
    reference = SchemaRegistryClient({"url": registry_url})
    text = record("First", "a")

    schema_id = client.register_schema(subject, Schema(text))
    assert client.register_schema(subject, Schema(text)) == schema_id  # idempotent
    assert reference.get_latest_version(subject).schema_id == schema_id

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert json.loads(fetched.schema_str) == json.loads(reference.get_schema(schema_id).schema_str or "")

    looked_up = client.lookup_schema(subject, Schema(text))
    assert (looked_up.schema_id, looked_up.subject, looked_up.version) == (schema_id, subject, 1)

    other = subject.replace("-value", "-other-value")
    assert client.register_schema(other, Schema(text)) == schema_id  # ids are global across subjects
    assert sorted(client.get_subjects_by_schema_id(schema_id)) == sorted([subject, other])
    assert client.get_subjects_by_schema_id(schema_id, subject_name=subject) == [subject]


def test_deleted_versions_are_listed_only_when_asked(registry_url: str, subject: str) -> None:
    client = registry_client(SchemaRegistrySettings(url=registry_url))
    schema_id = client.register_schema(subject, Schema(record("Deleted", "a")))
    httpx.delete(f"{registry_url}/subjects/{subject}/versions/1", timeout=30).raise_for_status()

    assert subject not in client.get_subjects_by_schema_id(schema_id)
    assert client.get_subjects_by_schema_id(schema_id, subject_name=subject, deleted=True) == [subject]


def test_errors_carry_the_registry_codes(registry_url: str, subject: str) -> None:
    client = registry_client(SchemaRegistrySettings(url=registry_url))
    with pytest.raises(SchemaRegistryError) as unknown:
        client.get_schema(2_000_000_000)
    assert (unknown.value.http_status_code, unknown.value.error_code) == (404, 40403)

    with pytest.raises(SchemaRegistryError) as not_registered:
        client.lookup_schema(subject, Schema(record("Missing", "a")))
    assert not_registered.value.http_status_code == 404

    client.register_schema(subject, Schema(record("Strict", "a")))
    assert client.set_compatibility(subject, "full") == "FULL"
    assert client.get_compatibility(subject) == "FULL"
    with pytest.raises(SchemaRegistryError) as refused:  # a new required field breaks FULL compatibility
        client.register_schema(subject, Schema(record("Strict", "a", "b")))
    assert refused.value.http_status_code == 409


def test_serde_contract_check_through_the_client(
    registry_url: str, subject: str, unique_name: Callable[[str], str]
) -> None:
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url)))
    topic = subject.removesuffix("-value")
    data = serde.encoder(subject, record("Contract", "a")).encode({"a": 5})
    assert serde.decode(data, topic=topic) == {"a": 5}
    with pytest.raises(WrongContract):
        AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url))).decode(data, topic=unique_name("other"))


def test_unreachable_registry_is_an_error_after_the_retries() -> None:
    client = RegistryClient(f"http://127.0.0.1:{free_port()}", retries=2, retry_backoff_s=0.01)
    with pytest.raises(SchemaRegistryError) as unreachable:
        client.get_schema(1)
    assert unreachable.value.http_status_code == -1
    with pytest.raises(ValueError, match="not an http"):
        RegistryClient("localhost:8081")
