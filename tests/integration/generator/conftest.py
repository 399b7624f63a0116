"""A Schema Registry for the generator tests: the stack's when it exports one, else a private one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.generator.support import private_registry


@pytest.fixture(scope="session")
def generator_registry_url(stack_env: dict[str, str]) -> Iterator[str]:
    if "SCHEMA_REGISTRY_URL" in stack_env:
        yield stack_env["SCHEMA_REGISTRY_URL"]
        return
    with private_registry(stack_env["POSTGRES_DSN"]) as url:
        yield url
