"""Registry roles: a read-only user fetches schemas, subjects, versions, config and mode, looks schemas up and tests
compatibility, but registering, changing compatibility or mode and deleting answer 403 with Confluent's error shape
(40301); an admin does all of it. Over HTTP and through confluent-kafka's own client and serializer."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.registry import RegistryProcess
from tests.integration.schema_registry.test_http_api import CT, V1, V2, error

pytestmark = pytest.mark.integration

SUBJECT = "parcels-value"
V3 = {"schema": json.dumps({"type": "record", "name": "Parcel", "fields": [{"name": "id", "type": "string"}]})}


@pytest.fixture(scope="module")
def credentials() -> dict[str, tuple[str, str]]:
    """Generated for the test (as a deployment's secrets would be): never literals."""
    return {role: (role, secrets.token_urlsafe(16)) for role in ("admin", "reader")}


@pytest.fixture(scope="module")
def server(start_registry: Callable[..., RegistryProcess], credentials: dict[str, tuple[str, str]]) -> RegistryProcess:
    admin, reader = credentials["admin"], credentials["reader"]
    return start_registry(
        SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS=":".join(admin),
        SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS=":".join(reader),
    )


def test_read_only_users_read_and_are_refused_every_change(
    server: RegistryProcess, credentials: dict[str, tuple[str, str]]
) -> None:
    admin = httpx.Client(base_url=server.url, auth=credentials["admin"], headers=CT, timeout=30)
    reader = httpx.Client(base_url=server.url, auth=credentials["reader"], headers=CT, timeout=30)
    with admin, reader:
        schema_id = admin.post(f"/subjects/{SUBJECT}/versions", json=V1).json()["id"]
        # Reads, including the POSTs that change nothing.
        assert reader.get(f"/schemas/ids/{schema_id}").status_code == 200
        assert reader.get(f"/schemas/ids/{schema_id}").status_code == 200  # the cached fast path
        assert reader.get("/subjects").json() == [SUBJECT]
        assert reader.get(f"/subjects/{SUBJECT}/versions/latest").json()["id"] == schema_id
        assert reader.get("/config").status_code == 200
        assert reader.get("/mode").status_code == 200
        assert reader.post(f"/subjects/{SUBJECT}", json=V1).json()["id"] == schema_id
        assert reader.post(f"/compatibility/subjects/{SUBJECT}/versions/latest", json=V2).status_code == 200
        # Every change: 403 with Confluent's error shape, and nothing changed.
        denied = [
            reader.post(f"/subjects/{SUBJECT}/versions", json=V2),
            reader.post("/subjects/other-value/versions", json=V1),
            reader.put("/config", json={"compatibility": "NONE"}),
            reader.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"}),
            reader.delete(f"/config/{SUBJECT}"),
            reader.put("/mode", json={"mode": "READONLY"}),
            reader.put(f"/mode/{SUBJECT}", json={"mode": "READONLY"}),
            reader.delete(f"/subjects/{SUBJECT}/versions/1"),
            reader.delete(f"/subjects/{SUBJECT}"),
        ]
        for response in denied:
            assert "User reader is denied operation" in error(response, 403, 40301)
        assert admin.get("/subjects").json() == [SUBJECT]
        assert admin.get(f"/subjects/{SUBJECT}/versions").json() == [1]
        error(admin.get(f"/config/{SUBJECT}"), 404, 40408)
        # The admin does all of it.
        assert admin.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"}).json() == {"compatibility": "NONE"}
        assert admin.post(f"/subjects/{SUBJECT}/versions", json=V2).status_code == 200
        assert admin.delete(f"/subjects/{SUBJECT}/versions/2").json() == 2
        assert admin.delete(f"/config/{SUBJECT}").status_code == 200
        # Wrong or missing credentials stay 401.
        error(httpx.get(f"{server.url}/subjects", auth=("reader", "wrong"), timeout=30), 401, 40101)
        error(httpx.get(f"{server.url}/schemas/ids/{schema_id}", timeout=30), 401, 40101)


def test_confluent_client_and_serializer_under_each_role(
    server: RegistryProcess, credentials: dict[str, tuple[str, str]]
) -> None:
    def client(role: str) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": server.url, "basic.auth.user.info": ":".join(credentials[role])})

    with client("admin") as admin, client("reader") as reader:  # closed: the server's shutdown waits for none
        _each_role(admin, reader)


def _each_role(admin: SchemaRegistryClient, reader: SchemaRegistryClient) -> None:
    schema = Schema(V3["schema"], "AVRO")
    subject = "shipments-value"
    with pytest.raises(SchemaRegistryError) as refused:
        reader.register_schema(subject, schema)
    assert (refused.value.http_status_code, refused.value.error_code) == (403, 40301)
    with pytest.raises(SchemaRegistryError) as refused:
        reader.set_compatibility(subject, "NONE")
    assert (refused.value.http_status_code, refused.value.error_code) == (403, 40301)
    schema_id = admin.register_schema(subject, schema)
    with pytest.raises(SchemaRegistryError) as refused:
        reader.delete_subject(subject)
    assert refused.value.error_code == 40301
    assert reader.get_schema(schema_id).schema_str == admin.get_schema(schema_id).schema_str
    assert reader.lookup_schema(subject, schema).schema_id == schema_id
    assert reader.get_latest_version(subject).schema_id == schema_id
    # A producer registers with the admin role; a consumer reads with the read-only one.
    context = SerializationContext("shipments", MessageField.VALUE)
    data = AvroSerializer(admin, V3["schema"])({"id": "S-1"}, context)
    assert AvroDeserializer(reader)(data, context) == {"id": "S-1"}
    read_only_serializer = AvroSerializer(reader, V3["schema"], conf={"auto.register.schemas": False})
    assert read_only_serializer({"id": "S-2"}, context) is not None  # finds the registered schema, registers nothing
    assert admin.delete_subject(subject) == [1]
