"""Every compatibility level through the running service: the HTTP API and confluent-kafka's own client.

Each case registers a history under one level, then offers a candidate that the level must accept or refuse.
The transitive levels are told apart from their single-step levels by a candidate compatible with the latest
version only; the same history under the single-step level accepts it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from schemas.compatibility import CompatibilityLevel
from tests.integration.registry import RegistryProcess

pytestmark = pytest.mark.integration


def avro(*fields: tuple[str, str] | tuple[str, str, Any]) -> str:
    """A record schema; a field is (name, type) or (name, type, default)."""
    declared = []
    for field in fields:
        item: dict[str, Any] = {"name": field[0], "type": field[1]}
        if len(field) == 3:
            item["default"] = field[2]
        declared.append(item)
    return json.dumps({"type": "record", "name": "Levels", "namespace": "com.freightline.test", "fields": declared})


A = avro(("a", "int"))
A_AS_STRING = avro(("a", "string"))  # a type change no level but NONE allows
A_PLUS_C = avro(("a", "int"), ("c", "string"))  # a field without default: forward only
EMPTY = avro()  # a field removed: backward only
A_PLUS_B = avro(("a", "int"), ("b", "string", ""))  # a field with a default: full

# Transitive histories: the candidate (last) is compatible with the latest version, not with the first.
BACKWARD_CHAIN = [A, avro(("a", "int"), ("b", "string", "")), avro(("b", "string"))]
FORWARD_CHAIN = [A, avro(("a", "int", 0), ("b", "string")), avro(("b", "string"))]
FULL_CHAIN = [A, avro(("a", "int", 0), ("b", "string", "")), avro(("b", "string", ""))]

CASES: list[tuple[str, list[str], bool]] = [
    ("NONE", [A, A_AS_STRING], True),
    ("BACKWARD", [A, A_PLUS_C], False),
    ("BACKWARD", [A, EMPTY], True),
    ("FORWARD", [A, EMPTY], False),
    ("FORWARD", [A, A_PLUS_C], True),
    ("FULL", [A, A_PLUS_C], False),
    ("FULL", [A, EMPTY], False),
    ("FULL", [A, A_PLUS_B], True),
    ("BACKWARD", BACKWARD_CHAIN, True),
    ("BACKWARD_TRANSITIVE", BACKWARD_CHAIN, False),
    ("BACKWARD_TRANSITIVE", [A, EMPTY], True),
    ("FORWARD", FORWARD_CHAIN, True),
    ("FORWARD_TRANSITIVE", FORWARD_CHAIN, False),
    ("FORWARD_TRANSITIVE", [A, A_PLUS_C], True),
    ("FULL", FULL_CHAIN, True),
    ("FULL_TRANSITIVE", FULL_CHAIN, False),
    ("FULL_TRANSITIVE", [A, A_PLUS_B], True),
]
IDS = [
    f"{level}-{'accepts' if accepted else 'refuses'}-{len(history)}v-{i}"
    for i, (level, history, accepted) in enumerate(CASES)
]


def test_every_level_is_covered() -> None:
    assert {level for level, _, _ in CASES} == {level.value for level in CompatibilityLevel}
    for level in {level for level, _, _ in CASES} - {"NONE"}:
        assert {accepted for lvl, _, accepted in CASES if lvl == level} == {True, False}, level


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30.0) as client:
        yield client


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient({"url": registry.url})
    yield sr
    sr.close()


def _subject(level: str) -> str:
    return f"levels-{level.lower()}-{uuid.uuid4().hex[:10]}-value"


@pytest.mark.parametrize(("level", "history", "accepted"), CASES, ids=IDS)
def test_level_over_http(http: httpx.Client, level: str, history: list[str], accepted: bool) -> None:
    subject = _subject(level)
    content = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    response = http.put(f"/config/{subject}", json={"compatibility": level}, headers=content)
    assert response.status_code == 200, response.text
    assert http.get(f"/config/{subject}").json()["compatibilityLevel"] == level
    *earlier, candidate = history
    for text in earlier:
        response = http.post(f"/subjects/{subject}/versions", json={"schema": text}, headers=content)
        assert response.status_code == 200, response.text

    # A transitive level is checked against every version, a single-step level against the latest.
    against = "versions" if level.endswith("_TRANSITIVE") else "versions/latest"
    check = http.post(f"/compatibility/subjects/{subject}/{against}", json={"schema": candidate}, headers=content)
    assert check.status_code == 200, check.text
    assert check.json()["is_compatible"] is accepted, check.text

    response = http.post(f"/subjects/{subject}/versions", json={"schema": candidate}, headers=content)
    if accepted:
        assert response.status_code == 200, response.text
        assert http.get(f"/subjects/{subject}/versions").json() == list(range(1, len(history) + 1))
    else:
        assert response.status_code == 409, response.text
        assert response.json()["error_code"] == 409
        assert http.get(f"/subjects/{subject}/versions").json() == list(range(1, len(earlier) + 1))


@pytest.mark.parametrize(("level", "history", "accepted"), CASES, ids=IDS)
def test_level_through_the_official_client(
    client: SchemaRegistryClient, level: str, history: list[str], accepted: bool
) -> None:
    subject = _subject(level)
    client.set_compatibility(subject, level)
    assert client.get_compatibility(subject) == level
    *earlier, candidate = history
    for text in earlier:
        client.register_schema(subject, Schema(text, "AVRO"))
    schema = Schema(candidate, "AVRO")
    if level.endswith("_TRANSITIVE"):
        assert client.test_compatibility_all_versions(subject, schema) is accepted
    else:
        assert client.test_compatibility(subject, schema) is accepted
    if accepted:
        client.register_schema(subject, schema)
        assert client.get_versions(subject) == list(range(1, len(history) + 1))
    else:
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(subject, schema)
        assert refused.value.http_status_code == 409
        assert client.get_versions(subject) == list(range(1, len(earlier) + 1))
