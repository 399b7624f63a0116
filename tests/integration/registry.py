"""Schema Registry processes of the tests' own (``python -m services.schema_registry``): each on a free port
against a database of the stack's PostgreSQL, started and stopped by the tests that need one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from tests.integration.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 60.0


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextlib.contextmanager
def temporary_database(admin_dsn: str, prefix: str) -> Iterator[str]:
    """A fresh database ``<prefix>_<random>`` in the server of ``admin_dsn``, dropped afterwards; yields its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield with_database(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


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


@contextlib.contextmanager
def private_registry(postgres_dsn: str, log_path: str | None = None) -> Iterator[str]:
    """A registry process of its own on a fresh database of the stack's PostgreSQL (its log at ``log_path``, else
    in a temporary directory); yields its URL."""
    with contextlib.ExitStack() as stack:
        dsn = stack.enter_context(temporary_database(postgres_dsn, "registry"))
        log = Path(log_path) if log_path else Path(stack.enter_context(tempfile.TemporaryDirectory())) / "registry.log"
        registry = RegistryProcess(dsn=dsn, log_path=log)
        stack.callback(registry.stop)
        yield registry.start().url


@contextlib.contextmanager
def stack_or_private_registry(stack_env: dict[str, str]) -> Iterator[str]:
    """The stack's registry when its environment names one, else a private one; yields its URL."""
    if "SCHEMA_REGISTRY_URL" in stack_env:
        yield stack_env["SCHEMA_REGISTRY_URL"]
    else:
        with private_registry(stack_env["POSTGRES_DSN"]) as url:
            yield url
