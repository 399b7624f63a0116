"""Test support for the generator and mirror integration tests: private registries, waiting for a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from tests.integration.processes import free_port


def _with_database(dsn: str, database: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + database


@contextmanager
def private_registry(postgres_dsn: str, log_path: str | None = None) -> Iterator[str]:
    """A Schema Registry process of its own on a fresh database of the stack's PostgreSQL; yields its URL."""
    database = f"registry_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    port = free_port()
    env = {
        **os.environ,
        "SCHEMA_REGISTRY_SERVER_PORT": str(port),
        "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": _with_database(postgres_dsn, database),
        "SERVICE_NAME": "schema-registry",
        "LOG_LEVEL": "WARNING",
    }
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "services.schema_registry"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private registry did not start (exit {process.poll()})")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def wait_for(condition: Any, timeout: float, message: str, interval: float = 0.5) -> None:
    """Poll ``condition`` until it is true; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)
