"""Registry processes (``python -m services.schema_registry``) on free ports, each against its own database
created in the stack's PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.registry import RegistryProcess, temporary_database


@pytest.fixture(scope="session")
def registry_database(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh databases in the stack's PostgreSQL (dropped at the end of the session)."""
    with contextlib.ExitStack() as databases:
        yield lambda: databases.enter_context(temporary_database(postgres_dsn, "sr_test"))


@pytest.fixture(scope="session")
def start_registry(
    registry_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., RegistryProcess]]:
    """Start a registry process; ``dsn`` shares a database, otherwise each one gets a fresh database."""
    started: list[RegistryProcess] = []
    logs = tmp_path_factory.mktemp("registry-logs")

    def start(dsn: str | None = None, **extra_env: str) -> RegistryProcess:
        process = RegistryProcess(
            dsn=dsn or registry_database(),
            log_path=logs / f"registry-{len(started)}.log",
            extra_env=extra_env,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def registry(start_registry: Callable[..., RegistryProcess]) -> RegistryProcess:
    """A registry shared by tests that only touch their own subjects (never global config or mode)."""
    return start_registry()


@pytest.fixture
def subject() -> str:
    return f"test-{uuid.uuid4().hex[:12]}-value"


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30.0) as client:
        yield client
