"""The REST API at HTTP level: content types, status codes and every Confluent error code."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.registry import RegistryProcess

pytestmark = pytest.mark.integration

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def schema(*fields: tuple[str, Any], name: str = "Parcel") -> dict[str, str]:
    return {
        "schema": json.dumps({"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]})
    }


V1 = schema(("id", "string"))
V2 = schema(("id", "string"), ("note", ["null", "string"]))  # has no default: incompatible (BACKWARD)


def error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str)
    return str(body["message"])


def register(http: httpx.Client, subject: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/subjects/{subject}/versions", json=body, headers=CT)


def test_root_types_and_media_types(http: httpx.Client) -> None:
    root = http.get("/")
    assert root.status_code == 200 and root.json() == {}
    assert root.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    assert http.get("/schemas/types").json() == ["AVRO"]
    for accept in ("application/json", "application/vnd.schemaregistry+json", "*/*"):
        response = http.get("/", headers={"Accept": accept})
        assert response.status_code == 200
    assert http.get("/", headers={"Accept": "application/json"}).headers["content-type"] == "application/json"
    error(http.get("/", headers={"Accept": "text/html"}), 406, 406)


def test_request_content_types(http: httpx.Client, subject: str) -> None:
    for content_type in ("application/json", "application/vnd.schemaregistry+json", "application/octet-stream"):
        response = http.post(
            f"/subjects/{subject}/versions", content=json.dumps(V1), headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
    bad = http.post(f"/subjects/{subject}/versions", content=json.dumps(V1), headers={"Content-Type": "text/xml"})
    error(bad, 415, 415)


def test_register_lookup_and_fetch(http: httpx.Client, subject: str) -> None:
    unique = schema(("id", "string"), name="Fetched")
    first = register(http, subject, unique)
    assert first.status_code == 200 and set(first.json()) == {"id"}
    schema_id = first.json()["id"]
    again = http.post(
        f"/subjects/{subject}/versions",
        json=unique,
        headers={**CT, "Confluent-Accept-Unknown-Properties": "true"},
    )
    assert again.json()["id"] == schema_id and again.json()["version"] == 1
    assert http.get(f"/schemas/ids/{schema_id}").json() == {
        "schema": '{"type":"record","name":"Fetched","fields":[{"name":"id","type":"string"}]}'
    }
    assert http.get(f"/schemas/ids/{schema_id}/schema").json() == json.loads(unique["schema"])
    assert http.get(f"/schemas/ids/{schema_id}/subjects").json() == [subject]
    assert http.get(f"/schemas/ids/{schema_id}/versions").json() == [{"subject": subject, "version": 1}]
    for version in ("1", "latest", "-1"):
        got = http.get(f"/subjects/{subject}/versions/{version}").json()
        assert got == {"subject": subject, "version": 1, "id": schema_id, "schema": got["schema"]}
    assert http.get(f"/subjects/{subject}/versions/1/schema").json() == json.loads(unique["schema"])
    assert http.get(f"/subjects/{subject}/versions/1/referencedby").json() == []
    looked = http.post(f"/subjects/{subject}", json=unique, headers=CT).json()
    assert (looked["id"], looked["version"], looked["subject"]) == (schema_id, 1, subject)
    # Subjects holding a slash are addressed percent-encoded.
    slashed = f"{subject}/with/slash"
    quoted = slashed.replace("/", "%2F")
    assert register(http, quoted, unique).json()["id"] == schema_id
    assert slashed in http.get("/subjects").json()
    assert http.get(f"/subjects/{quoted}/versions").json() == [1]


def test_not_found_codes(http: httpx.Client, subject: str) -> None:
    message = error(http.get(f"/subjects/{subject}/versions"), 404, 40401)
    assert subject in message
    error(http.get(f"/subjects/{subject}/versions/1"), 404, 40401)
    error(http.post(f"/subjects/{subject}", json=V1, headers=CT), 404, 40401)
    register(http, subject, V1)
    error(http.get(f"/subjects/{subject}/versions/9"), 404, 40402)
    error(http.delete(f"/subjects/{subject}/versions/9"), 404, 40402)
    error(http.get("/schemas/ids/987654"), 404, 40403)
    error(http.get("/schemas/ids/987654/schema"), 404, 40403)
    error(http.post(f"/subjects/{subject}", json=schema(("other", "int")), headers=CT), 404, 40403)
    error(http.get("/schemas/guids/3f2504e0-4f89-11d3-9a0c-0305e82c3301"), 404, 40403)
    error(http.get("/no/such/path"), 404, 404)
    error(http.get("/schemas/ids/abc"), 404, 404)
    error(http.put("/subjects"), 405, 405)


def test_soft_and_permanent_deletes(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    second = schema(("id", "string"), ("n", ["null", "int"]))
    second["schema"] = second["schema"].replace('"type": ["null", "int"]}', '"type": ["null", "int"], "default": null}')
    assert register(http, subject, second | {"schemaType": "AVRO"}).status_code == 200
    versions = http.get(f"/subjects/{subject}/versions").json()
    error(http.delete(f"/subjects/{subject}/versions/1?permanent=true"), 404, 40407)
    assert http.delete(f"/subjects/{subject}/versions/1").json() == 1
    error(http.delete(f"/subjects/{subject}/versions/1"), 404, 40406)
    error(http.get(f"/subjects/{subject}/versions/1"), 404, 40402)
    assert http.get(f"/subjects/{subject}/versions/1?deleted=true").json()["version"] == 1
    assert http.delete(f"/subjects/{subject}/versions/1?permanent=true").json() == 1

    error(http.delete(f"/subjects/{subject}?permanent=true"), 404, 40405)
    assert http.delete(f"/subjects/{subject}").json() == versions[1:]
    error(http.delete(f"/subjects/{subject}"), 404, 40404)
    error(http.get(f"/subjects/{subject}/versions"), 404, 40401)
    assert http.get(f"/subjects/{subject}/versions?deleted=true").json() == versions[1:]
    assert subject in http.get("/subjects?deleted=true").json()
    assert subject not in http.get("/subjects").json()
    assert http.delete(f"/subjects/{subject}?permanent=true").json() == versions[1:]
    error(http.delete(f"/subjects/{subject}"), 404, 40401)
    # Re-registering after a permanent delete restarts versions, the id stays the same.
    again = register(http, subject, V1).json()["id"]
    assert http.get(f"/subjects/{subject}/versions").json() == [1]
    assert again == http.get(f"/subjects/{subject}/versions/1").json()["id"]


def test_config_codes(http: httpx.Client, subject: str) -> None:
    error(http.get(f"/config/{subject}"), 404, 40408)
    assert http.get(f"/config/{subject}?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}
    error(http.put(f"/config/{subject}", json={"compatibility": "SIDEWAYS"}, headers=CT), 422, 42203)
    error(http.put(f"/config/{subject}", json={"compatibility": 3}, headers=CT), 422, 42203)
    assert http.put(f"/config/{subject}", json={"compatibility": "full"}, headers=CT).json() == {
        "compatibility": "FULL"
    }
    assert http.get(f"/config/{subject}").json() == {"compatibilityLevel": "FULL"}
    assert http.delete(f"/config/{subject}").json() == {"compatibilityLevel": "FULL"}
    error(http.delete(f"/config/{subject}"), 404, 40401)
    register(http, subject, V1)
    error(http.delete(f"/config/{subject}"), 404, 40408)


def test_mode_codes(http: httpx.Client, subject: str) -> None:
    error(http.get(f"/mode/{subject}"), 404, 40409)
    assert http.get(f"/mode/{subject}?defaultToGlobal=true").json() == {"mode": "READWRITE"}
    error(http.put(f"/mode/{subject}", json={"mode": "SOMETIMES"}, headers=CT), 422, 42204)
    register(http, subject, V1)
    error(http.put(f"/mode/{subject}", json={"mode": "IMPORT"}, headers=CT), 422, 42205)
    assert http.put(f"/mode/{subject}", json={"mode": "READONLY"}, headers=CT).json() == {"mode": "READONLY"}
    error(register(http, subject, schema(("id", "string"), ("x", ["null", "int"]))), 422, 42205)
    error(http.delete(f"/subjects/{subject}"), 422, 42205)
    error(register(http, subject, V1 | {"id": 5555}), 422, 42205)
    assert http.delete(f"/mode/{subject}").json() == {"mode": "READONLY"}
    error(http.delete(f"/mode/{subject}"), 404, 40409)
    error(register(http, subject, V1 | {"id": 5555}), 422, 42205)
    imported = f"{subject}-import"
    assert http.put(f"/mode/{imported}", json={"mode": "IMPORT"}, headers=CT).json() == {"mode": "IMPORT"}
    response = register(http, imported, schema(("only", "int"), name="Imported") | {"id": 777777, "version": 3})
    assert response.json()["id"] == 777777
    assert http.get(f"/subjects/{imported}/versions").json() == [3]
    clash = register(http, imported, schema(("other", "int"), name="Imported") | {"id": 777777})
    error(clash, 422, 42205)


def test_schema_and_version_validation(http: httpx.Client, subject: str) -> None:
    for body in (
        {"schema": "{not json"},
        {"schema": '{"type": "record", "name": "R"}'},
        {"schema": '{"type": "unknown"}'},
        {"schema": ""},
        {},
        {"schema": '"string"', "schemaType": "XML"},
        {"schema": '"string"', "references": [{"name": "x", "subject": "missing", "version": 1}]},
    ):
        error(register(http, subject, body), 422, 42201)
    error(http.post(f"/subjects/{subject}/versions", content=b"{oops", headers=CT), 400, 400)
    for version in ("0", "-2", "abc", "2147483648", "1.5"):
        error(http.get(f"/subjects/{subject}/versions/{version}"), 422, 42202)
    error(http.post(f"/compatibility/subjects/{subject}/versions/zero", json=V1, headers=CT), 422, 42202)


def test_compatibility_endpoint(http: httpx.Client, subject: str) -> None:
    assert http.post(f"/compatibility/subjects/{subject}/versions", json=V1, headers=CT).json() == {
        "is_compatible": True
    }
    error(http.post(f"/compatibility/subjects/{subject}/versions/latest", json=V1, headers=CT), 404, 40401)
    register(http, subject, V1)
    error(http.post(f"/compatibility/subjects/{subject}/versions/5", json=V1, headers=CT), 404, 40402)
    verdict = http.post(f"/compatibility/subjects/{subject}/versions/latest?verbose=true", json=V2, headers=CT).json()
    assert verdict["is_compatible"] is False
    assert verdict["messages"][0].startswith("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'")
    assert "{oldSchemaVersion: 1}" in verdict["messages"]
    assert verdict["messages"][-1] == "{validateFields: 'false', compatibility: 'BACKWARD'}"
    refused = register(http, subject, V2)
    message = error(refused, 409, 409)
    assert message.startswith(f'Schema being registered is incompatible with an earlier schema for subject "{subject}"')


def test_references_block_deletion(http: httpx.Client, subject: str) -> None:
    base = f"{subject}-base"
    register(http, base, {"schema": json.dumps({"type": "enum", "name": "Kind", "symbols": ["A", "B"]})})
    body = schema(("kind", "Kind"), name="UsesKind") | {"references": [{"name": "Kind", "subject": base, "version": 1}]}
    user_id = register(http, subject, body).json()["id"]
    assert http.get(f"/subjects/{base}/versions/1/referencedby").json() == [user_id]
    got = http.get(f"/schemas/ids/{user_id}").json()
    assert got["references"] == [{"name": "Kind", "subject": base, "version": 1}]
    error(http.delete(f"/subjects/{base}/versions/1"), 422, 42206)
    error(http.delete(f"/subjects/{base}"), 422, 42206)
    http.delete(f"/subjects/{subject}")
    assert http.delete(f"/subjects/{base}").json() == [1]


def test_basic_auth(start_registry: Callable[..., RegistryProcess]) -> None:
    server = start_registry(SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS="ops:s3cret,ci:other")
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.get("/subjects")
        error(response, 401, 40101)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert anonymous.get("/healthz").status_code == 200
        error(anonymous.get("/subjects", auth=("ops", "wrong")), 401, 40101)
        garbage = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
        error(anonymous.get("/subjects", headers=garbage), 401, 40101)
        assert anonymous.get("/subjects", auth=("ops", "s3cret")).json() == []
        assert anonymous.get("/subjects", auth=("ci", "other")).status_code == 200
        registered = anonymous.post("/subjects/a-value/versions", json=V1, headers=CT, auth=("ops", "s3cret"))
        schema_id = registered.json()["id"]
        # The cached fast path is protected too.
        assert anonymous.get(f"/schemas/ids/{schema_id}", auth=("ops", "s3cret")).status_code == 200
        error(anonymous.get(f"/schemas/ids/{schema_id}"), 401, 40101)


def test_metrics_and_health(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200
    text = http.get("/metrics").text
    assert "freightline_schema_registry_requests_total" in text
    assert 'route="/subjects/{subject}/versions"' in text
    assert "freightline_schema_registry_schemas_registered_total" in text


def test_store_errors(start_registry: Callable[..., RegistryProcess], postgres_dsn: str) -> None:
    server = start_registry()
    database = server.dsn.rsplit("/", 1)[1]
    with httpx.Client(base_url=server.url, timeout=60.0) as http:
        schema_id = register(http, "store-value", V1).json()["id"]
        assert http.get(f"/schemas/ids/{schema_id}").status_code == 200
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')  # type: ignore[arg-type]
        response = http.get("/subjects")
        assert response.status_code == 500
        assert response.json()["error_code"] in (50001, 50002)
        assert http.get("/readyz").status_code == 503
        # Ids already served stay available from memory, and the process keeps running.
        assert http.get(f"/schemas/ids/{schema_id}").status_code == 200
        assert server.alive()
