"""Benchmark: ``GET /schemas/ids/{id}`` throughput with wrk, next to the same server's trivial endpoint.

``run(env)`` starts a registry of its own (one worker, as deployed) on a fresh database in the stack's
PostgreSQL (``POSTGRES_DSN`` of the stack env), registers a realistic schema, then runs wrk ~10 s per
endpoint (``GET /``: constant bytes, no database, no routing; the same request parsing, content negotiation and
metrics as the cached lookup). Goal: lookups >= 0.8x the trivial endpoint. Runnable alone:
``python -m tests.bench.bench_schema_registry`` (uses ``FREIGHTLINE_STACK_ENV`` or ``.freightline/stack.env``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from tests.bench.rows import row, stack_env

REPO_ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 10
CONNECTIONS = 32
THREADS = 1
GOAL_RATIO = 0.8

SCHEMA = {
    "type": "record",
    "name": "ShipmentEvent",
    "namespace": "com.freightline.logistics",
    "fields": [
        {"name": "shipment_id", "type": "string"},
        {"name": "order_id", "type": "string"},
        {"name": "carrier", "type": {"type": "enum", "name": "Carrier", "symbols": ["DHL", "UPS", "FEDEX"]}},
        {"name": "weight_grams", "type": "long"},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrk(url: str) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    out = subprocess.run(
        [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output: {out}")
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error responses: {out}")
    return float(match.group(1))


def run(env: dict[str, str]) -> list[dict[str, object]]:
    admin_dsn = env["POSTGRES_DSN"]
    database = f"sr_bench_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(admin_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {
        **os.environ,
        "SCHEMA_REGISTRY_SERVER_PORT": str(port),
        "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": dsn,
        "SCHEMA_REGISTRY_SERVER_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "services.schema_registry"], cwd=REPO_ROOT, env=server_env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"registry did not start: {log.read().decode(errors='replace')}")
                time.sleep(0.1)
            response = httpx.post(
                f"{url}/subjects/bench-value/versions",
                json={"schema": json.dumps(SCHEMA)},
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            )
            response.raise_for_status()
            schema_id = response.json()["id"]
            httpx.get(f"{url}/schemas/ids/{schema_id}").raise_for_status()
            by_id = _wrk(f"{url}/schemas/ids/{schema_id}")
            trivial = _wrk(f"{url}/")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
    return [
        row(
            "schema_registry.get_schema_by_id",
            by_id,
            "req/s",
            "same server's trivial endpoint (GET /)",
            trivial,
            GOAL_RATIO,
        )
    ]


if __name__ == "__main__":
    for result in run(stack_env()):
        print(json.dumps(result))
