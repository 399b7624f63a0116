"""Pure logic of the registry: canonical form, request parsing, content negotiation, settings."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.compatibility import CompatibilityLevel
from services.schema_registry.app import V1, _negotiate
from services.schema_registry.errors import RegistryError
from services.schema_registry.registry import parse_register_body, parse_version, valid_subject
from services.schema_registry.schemas import Reference, SchemaText, canonical_avro
from services.schema_registry.settings import RegistryServerSettings


def test_canonical_form_ignores_whitespace_and_attribute_order() -> None:
    a = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "doc": "x"}]}'
    b = json.dumps({"fields": [{"doc": "x", "type": "int", "name": "a"}], "name": "R", "type": "record"}, indent=4)
    assert canonical_avro(a) == canonical_avro(b)
    assert canonical_avro(a) == '{"type":"record","name":"R","fields":[{"name":"a","type":"int","doc":"x"}]}'


def test_canonical_form_of_primitives_and_custom_props() -> None:
    assert canonical_avro('{"type": "string"}') == '"string"'
    assert canonical_avro('{"type": "long", "logicalType": "timestamp-millis"}') == (
        '{"type":"long","logicalType":"timestamp-millis"}'
    )
    with_props = '{"type": "record", "name": "R", "fields": [], "z": 1, "a": 2}'
    assert canonical_avro(with_props) == '{"type":"record","name":"R","fields":[],"z":1,"a":2}'
    assert canonical_avro(with_props, normalize=True) == '{"type":"record","name":"R","fields":[],"a":2,"z":1}'


def test_fingerprint_covers_type_text_and_references() -> None:
    plain = SchemaText("AVRO", '"string"')
    referencing = SchemaText("AVRO", '"string"', (Reference("x", "s", 1),))
    assert plain.fingerprint == SchemaText("AVRO", '"string"').fingerprint
    assert plain.fingerprint != referencing.fingerprint


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("latest", None), ("-1", None), ("2147483647", 2**31 - 1)])
def test_parse_version(raw: str, expected: int | None) -> None:
    assert parse_version(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-2", "2147483648", "abc", "", "1.0", "LATEST"])
def test_parse_version_rejects(raw: str) -> None:
    with pytest.raises(RegistryError) as err:
        parse_version(raw)
    assert err.value.error_code == 42202 and err.value.status == 422


def test_parse_register_body() -> None:
    request = parse_register_body(
        {"schema": '{"type":"string"}', "references": [{"name": "n", "subject": "s", "version": 2}], "id": 5},
        normalize=False,
    )
    assert request.schema == SchemaText("AVRO", '"string"', (Reference("n", "s", 2),))
    assert request.schema_id == 5
    assert parse_register_body({"schema": '"int"', "id": 5}, normalize=False, allow_ids=False).schema_id is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], 422),
        ({"schema": 5}, 42201),
        ({"schema": " "}, 42201),
        ({"schema": '"int"', "schemaType": "PROTOBUF"}, 42201),
        ({"schema": '"int"', "references": "x"}, 42201),
        ({"schema": '"int"', "references": [{"name": "a\x00", "subject": "s", "version": 1}]}, 42201),
        ({"schema": '"int"', "references": [{"name": "a", "subject": "s", "version": "1"}]}, 42201),
        ({"schema": "{bad"}, 42201),
        ({"schema": '"int"', "id": "7"}, 422),
        ({"schema": '"int"', "version": True}, 422),
    ],
)
def test_parse_register_body_rejects(body: object, code: int) -> None:
    with pytest.raises(RegistryError) as err:
        parse_register_body(body, normalize=False)
    assert err.value.error_code == code


def test_valid_subject() -> None:
    assert valid_subject("orders.created.v1-value")
    assert valid_subject("with/slash")
    assert not valid_subject("")
    assert not valid_subject("nul\x00")
    assert not valid_subject("x" * 1001)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, V1),
        ("*/*", V1),
        ("application/json", "application/json"),
        ("application/vnd.schemaregistry.v1+json, application/json", V1),
        ("text/html;q=1, application/json;q=0.5", "application/json"),
        ("application/json;q=0, application/vnd.schemaregistry+json", "application/vnd.schemaregistry+json"),
        ("text/html", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert _negotiate(accept) == expected


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "WORKERS", "DEFAULT_COMPATIBILITY", "BASIC_AUTH_USERS", "READ_ONLY_USERS"):
        monkeypatch.delenv(f"SCHEMA_REGISTRY_SERVER_{name}", raising=False)
    defaults = RegistryServerSettings()
    assert (defaults.host, defaults.port, defaults.workers) == ("127.0.0.1", 18081, 1)
    assert defaults.default_compatibility is CompatibilityLevel.BACKWARD
    assert defaults.basic_auth_users is None and defaults.users() == {}
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", "ops:pa:ss, ci:x")
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_DEFAULT_COMPATIBILITY", "full_transitive")
    configured = RegistryServerSettings()
    assert configured.users() == {"ops": "pa:ss", "ci": "x"}
    assert "pa:ss" not in repr(configured)
    assert configured.default_compatibility is CompatibilityLevel.FULL_TRANSITIVE
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", "nopassword")
    with pytest.raises(ValueError):
        RegistryServerSettings().users()
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_DEFAULT_COMPATIBILITY", "SIDEWAYS")
    with pytest.raises(ValidationError):
        RegistryServerSettings()


def test_roles_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", "ops:a1")
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS", "flink:r1,dash:r2")
    settings = RegistryServerSettings()
    assert settings.users() == {"ops": "a1", "flink": "r1", "dash": "r2"}
    assert settings.read_only() == frozenset({"flink", "dash"})
    assert "r1" not in repr(settings)
    assert settings.secret_values() >= {"a1", "r1", "r2"}
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS", "ops:r3")
    with pytest.raises(ValueError, match="one role per user"):
        RegistryServerSettings().users()
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS", "reader:")
    with pytest.raises(ValueError, match="SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS entries must be user:password"):
        RegistryServerSettings().users()
