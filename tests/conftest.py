"""Session fixtures: the real local stack, started once per test session.

When ``FREIGHTLINE_STACK_ENV`` names a running stack's ``stack.env``, the tests use that stack; otherwise the
session starts the stack (reusing it when it already runs) and stops it at the end if it started it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.common.settings import KafkaSettings


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    configured = os.environ.get("FREIGHTLINE_STACK_ENV")
    if configured:
        yield _read_env(Path(configured))
        return
    from deploy.local.context import StackContext
    from deploy.local.settings import StackSettings
    from deploy.local.stack import Stack

    stack = Stack(StackContext.create(StackSettings()))
    with stack.running(keep=bool(os.environ.get("FREIGHTLINE_KEEP_STACK"))) as env:
        yield env


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_env: dict[str, str]) -> str:
    return stack_env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def postgres_dsn(stack_env: dict[str, str]) -> str:
    return stack_env["POSTGRES_DSN"]


@pytest.fixture(scope="session")
def registry_url(stack_env: dict[str, str]) -> str:
    if "SCHEMA_REGISTRY_URL" not in stack_env:
        pytest.fail("the local stack exported no SCHEMA_REGISTRY_URL")
    return stack_env["SCHEMA_REGISTRY_URL"]


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory of names unique to this test (topics, groups, databases)."""
    base = request.node.name.split("[")[0].replace("_", "-")[:40]

    def make(prefix: str = "") -> str:
        return f"{prefix or base}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def new_topic(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Callable[..., str]:
    """Factory creating a fresh topic on the local cluster."""
    from services.common.kafka import ensure_topics

    def make(prefix: str = "t", partitions: int = 3, **configs: str) -> str:
        name = unique_name(prefix)
        ensure_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [(name, partitions, configs)])
        return name

    return make
