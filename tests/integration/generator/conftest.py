"""A Schema Registry for the generator tests: the stack's when it exports one, else a private one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.registry import stack_or_private_registry


@pytest.fixture(scope="session")
def generator_registry_url(stack_env: dict[str, str]) -> Iterator[str]:
    with stack_or_private_registry(stack_env) as url:
        yield url
