"""Registry processes (``python -m services.schema_registry``) on free ports, each against its own database
created in the stack's PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.integration.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
STARTUP_DEADLINE_S = 60.0


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@dataclass
class RegistryProcess:
    """One registry server process; ``restart`` keeps its port and database."""

    dsn: str
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegistryProcess:
        env = {
            **os.environ,
            "SCHEMA_REGISTRY_SERVER_HOST": "127.0.0.1",
            "SCHEMA_REGISTRY_SERVER_PORT": str(self.port),
            "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": self.dsn,
            "SCHEMA_REGISTRY_SERVER_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.schema_registry"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited with {self.process.returncode}: {self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry did not become healthy: {self.log_path.read_text()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def restart(self) -> RegistryProcess:
        self.stop()
        return self.start()


@pytest.fixture(scope="session")
def registry_database(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh databases in the stack's PostgreSQL (dropped at the end of the session)."""
    created: list[str] = []

    def make() -> str:
        name = f"sr_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        created.append(name)
        return with_database(postgres_dsn, name)

    yield make
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


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
