"""Hostile input never produces a 5xx and never takes the registry down (bounded property tests)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.registry import RegistryProcess

pytestmark = pytest.mark.integration

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

segment = st.one_of(
    st.sampled_from(
        [
            "subjects",
            "versions",
            "schemas",
            "ids",
            "config",
            "mode",
            "compatibility",
            "latest",
            "-1",
            "0",
            "referencedby",
            "schema",
            "guids",
            "types",
            "%2F",
            "%00",
            "%ff",
            "..",
            "2147483648",
            "1",
        ]
    ),
    st.text(min_size=0, max_size=20),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
avro_like = st.recursive(
    st.sampled_from(["int", "long", "string", "null", "bytes", "nope", "record", "enum", "Unknown"]),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["record", "enum", "array", "map", "fixed", "error", "union", "x"])},
            optional={
                "name": st.text(max_size=8),
                "fields": st.lists(st.fixed_dictionaries({"name": st.text(max_size=5), "type": children}), max_size=3),
                "symbols": st.lists(st.text(max_size=4), max_size=3),
                "items": children,
                "values": children,
                "size": st.integers(-5, 5),
                "default": json_value,
            },
        ),
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def fuzz_registry(start_registry: Callable[..., RegistryProcess]) -> RegistryProcess:
    return start_registry(SCHEMA_REGISTRY_SERVER_MAX_BODY_BYTES="65536")


@pytest.fixture(scope="module")
def client(fuzz_registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_registry.url, timeout=30.0) as http:
        yield http


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if response.status_code >= 400:
        assert "error_code" in response.json()


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.lists(segment, min_size=0, max_size=6),
    query=st.dictionaries(
        st.sampled_from(
            [
                "deleted",
                "permanent",
                "verbose",
                "normalize",
                "subject",
                "offset",
                "limit",
                "defaultToGlobal",
                "force",
                "subjectPrefix",
                "x",
            ]
        ),
        st.text(max_size=8),
        max_size=3,
    ),
    payload=json_value,
)
def test_random_requests(
    client: httpx.Client, method: str, path: list[str], query: dict[str, str], payload: object
) -> None:
    url = str(client.base_url).rstrip("/") + "/" + "/".join(quote(part, safe="%") for part in path)
    content = json.dumps(payload).encode() if method in ("POST", "PUT") else None
    check(client.request(method, url, params=query, content=content, headers=CT))


@FUZZ
@given(schema=avro_like, schema_type=st.sampled_from([None, "AVRO", "avro", "JSON", 7]), as_text=st.booleans())
def test_random_schemas(client: httpx.Client, schema: object, schema_type: object, as_text: bool) -> None:
    body: dict[str, object] = {"schema": json.dumps(schema) if as_text else schema}
    if schema_type is not None:
        body["schemaType"] = schema_type
    for url in ("/subjects/fuzz-value/versions", "/subjects/fuzz-value", "/compatibility/subjects/fuzz-value/versions"):
        check(client.post(url, json=body, headers=CT))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_garbage_bodies(client: httpx.Client, raw: bytes) -> None:
    for url in ("/subjects/fuzz-value/versions", "/config", "/mode/fuzz-value"):
        method = "POST" if "subjects" in url else "PUT"
        check(client.request(method, url, content=raw, headers=CT))


def test_huge_and_deep_bodies(client: httpx.Client, fuzz_registry: RegistryProcess) -> None:
    huge = b'{"schema": "' + b"x" * 200_000 + b'"}'
    response = client.post("/subjects/fuzz-value/versions", content=huge, headers=CT)
    assert response.status_code == 413
    deep = "[" * 5000 + "]" * 5000
    check(client.post("/subjects/fuzz-value/versions", json={"schema": deep}, headers=CT))
    nested = '"int"'
    for _ in range(300):
        nested = '{"type": "array", "items": ' + nested + "}"
    check(client.post("/subjects/fuzz-value/versions", json={"schema": nested}, headers=CT))
    check(client.get("/subjects/" + "s" * 5000 + "/versions"))
    check(client.post("/subjects/" + "s" * 5000 + "/versions", json={"schema": '"int"'}, headers=CT))
    check(client.get("/schemas/ids/99999999999999999999"))
    assert fuzz_registry.alive()
    assert client.get("/healthz").status_code == 200
