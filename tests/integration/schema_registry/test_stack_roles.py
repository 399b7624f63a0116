"""The stack's own registry runs with roles: its admin (the credentials of the exported ``SCHEMA_REGISTRY_URL``) and
its read-only user (``SCHEMA_REGISTRY_READ_ONLY_USER_INFO``), and the services of the main job, given the read-only
user and no auto-registration, find every schema they write once the contracts are registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from deploy.processes import read_only_registry
from schemas.catalogue import load_catalogue, load_schema, schema_text
from schemas.governance.register import register_all
from services.common.entrypoint import CONFIGURATION_ERROR
from services.common.registry import Schema, SchemaRegistryError
from services.common.serde import AvroSerde, UnknownSchema, registry_client, subject_for
from services.common.settings import SchemaRegistrySettings
from services.generator.records import ALL_TOPICS
from services.generator.settings import GeneratorSettings
from tests.integration.schema_registry.stack_roles import check_roles

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack_with_roles(stack_env: dict[str, str]) -> None:
    if "SCHEMA_REGISTRY_READ_ONLY_USER_INFO" not in stack_env:
        pytest.fail("the stack exports no SCHEMA_REGISTRY_READ_ONLY_USER_INFO: its registry runs without roles")


def test_the_stack_registry_has_an_admin_a_read_only_user_and_no_anonymous_access(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    check_roles(stack_env, f"{unique_name('roles')}-value")


def test_read_only_services_look_up_every_catalogue_schema_they_write(
    stack_env: dict[str, str], unique_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the main job does: the contracts registered by the admin, then each service's encoder with the read-only
    user (``deploy.processes.read_only_registry``) finds its subject's schema, and cannot register another."""
    admin = registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"]))
    catalogue = load_catalogue()
    register_all(admin, catalogue)

    env = read_only_registry(stack_env)
    assert env["SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS"] == "false"
    assert "@" not in env["SCHEMA_REGISTRY_URL"]  # the admin's credentials are gone
    for key, value in {**stack_env, **env}.items():  # what a service of the main job reads from its environment
        if key.startswith("SCHEMA_REGISTRY_"):
            monkeypatch.setenv(key, value)
    reader = registry_client(SchemaRegistrySettings())
    serde = AvroSerde(reader)
    assert serde.auto_register is False
    for spec in catalogue.topics:
        encoder = serde.encoder(subject_for(spec.name), load_schema(spec.value_schema))
        assert encoder.schema_id == admin.lookup_schema(spec.subject, Schema(schema_text(spec.value_schema))).schema_id

    # A subject nobody registered: looked up, not registered (UnknownSchema), and registering it is refused.
    fresh = f"{unique_name('unregistered')}-value"
    with pytest.raises(UnknownSchema, match="SR code 40401"):  # subject not found
        serde.encoder(fresh, load_schema(catalogue.topics[0].value_schema))
    with pytest.raises(SchemaRegistryError) as refused:
        reader.register_schema(fresh, Schema(schema_text(catalogue.topics[0].value_schema)))
    assert (refused.value.http_status_code, refused.value.error_code) == (403, 40301)


def test_the_generator_with_the_read_only_user_writes_registered_contracts_only(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    """The generator process with the environment the main job gives it: it writes every topic once the contracts
    are registered (here under the run's topic prefix), and stops naming the missing subject when they are not."""
    registered, missing = unique_name("ro") + ".", unique_name("ro") + "."
    register_all(
        registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"])),
        load_catalogue(),
        subject_prefix=registered,
    )

    def generate(prefix: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **stack_env,
            **read_only_registry(stack_env),
            "GENERATOR_TOPIC_PREFIX": prefix,
            "GENERATOR_PRODUCTS": "20",
            "GENERATOR_CUSTOMERS": "20",
            "GENERATOR_SUPPLIERS": "5",
            "GENERATOR_DEVICES": "20",
            "LOG_LEVEL": "WARNING",
        }
        start = GeneratorSettings().backlog_start(300, int(time.time() * 1000)).isoformat()
        command = [sys.executable, "-m", "services.generator", "--events", "300", "--no-pace", "--seed", "3"]
        return subprocess.run(
            [*command, "--start", start], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    ok = generate(registered)
    assert ok.returncode == 0, ok.stderr[-3000:]
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["events"] == 300 and sum(summary["topics"].values()) >= 300  # reference data comes on top
    assert set(summary["topics"]) <= {registered + name for name in ALL_TOPICS}

    refused = generate(missing)
    lines = [line for line in refused.stderr.splitlines() if line.strip() and not line.startswith("%")]  # librdkafka
    assert refused.returncode == CONFIGURATION_ERROR, refused.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("schema registry refused a contract: subject " + missing), lines
    assert "SR code 40401" in lines[0] and "SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS=false" in lines[0]
