"""``freightline schemas register`` against the real Schema Registry of the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from typer.testing import CliRunner

from deploy.cli import build
from schemas.catalogue import load_catalogue, schema_text
from schemas.governance.register import register_all

pytestmark = pytest.mark.integration


@pytest.fixture
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


def test_register_every_subject_idempotently(client: SchemaRegistryClient, unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("contracts") + "."
    catalogue = load_catalogue()
    first = register_all(client, catalogue, subject_prefix=prefix)
    assert [item.subject for item in first] == [f"{prefix}{spec.subject}" for spec in catalogue.topics]
    assert all(item.version == 1 for item in first)

    again = register_all(client, catalogue, subject_prefix=prefix)
    assert [(item.subject, item.schema_id, item.version) for item in again] == [
        (item.subject, item.schema_id, item.version) for item in first
    ]
    # one id per distinct schema text: every dead-letter subject shares the DeadLetter schema's id
    ids = {item.schema_id for item in first if item.subject.endswith(".dlq-value")}
    assert len(ids) == 1

    for spec, item in zip(catalogue.topics, first, strict=True):
        assert client.get_compatibility(item.subject) == spec.compatibility
        registered = client.get_schema(item.schema_id)
        assert registered.schema_str is not None
        assert json.loads(registered.schema_str) == json.loads(schema_text(spec.value_schema))


def test_registered_level_rejects_an_incompatible_version(
    client: SchemaRegistryClient, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("contracts") + "."
    catalogue = load_catalogue()
    spec = catalogue.topic("reference.stores.v1")
    [registration] = register_all(client, catalogue, subject_prefix=prefix, topics=[spec])
    assert registration.compatibility == "FULL_TRANSITIVE"

    schema = json.loads(schema_text(spec.value_schema))
    schema["fields"] = [field for field in schema["fields"] if field["name"] != "timezone"]
    with pytest.raises(SchemaRegistryError) as raised:
        client.register_schema(registration.subject, Schema(json.dumps(schema), "AVRO"))
    assert raised.value.http_status_code == 409


def test_cli_register_prints_subject_id_and_version(registry_url: str, unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("contracts") + "."
    result = CliRunner().invoke(
        build(),
        ["schemas", "register", "--url", registry_url, "--subject-prefix", prefix, "--topic", "commerce.orders.v1"],
    )
    assert result.exit_code == 0, result.output
    assert f"{prefix}commerce.orders.v1-value -> id " in result.output
    assert "version 1 (BACKWARD_TRANSITIVE)" in result.output


def test_the_contracts_step_needs_the_registry_admin(stack_env: dict[str, str]) -> None:
    """``python -m services.schema_registry.contracts`` (the deployments' registration step) as the read-only user
    the services get: refused at the first subject, one line naming the refusal, exit status 1."""
    from deploy.processes import read_only_registry

    env = {**os.environ, **{k: v for k, v in stack_env.items() if k.startswith("SCHEMA_REGISTRY_")}}
    env.update(read_only_registry(stack_env))
    done = subprocess.run(
        [sys.executable, "-m", "services.schema_registry.contracts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]  # (after any library's warnings)
    assert last.startswith("registration failed: User reader is denied") and "40301" in last, done.stderr
    assert done.stdout == ""
