"""Benchmark: ``GET /schemas/ids/{id}`` throughput with wrk, next to the same server's trivial endpoint.

``run(env)`` starts a registry of its own (one worker, as deployed) on a fresh database in the stack's
PostgreSQL (``POSTGRES_DSN`` of the stack env), registers a realistic schema, then runs wrk ~10 s per
endpoint (``GET /``: constant bytes, no database, no routing; the same request parsing, content negotiation and
metrics as the cached lookup). Goal: lookups >= 0.8x the trivial endpoint. Runnable alone:
``python -m tests.bench.bench_schema_registry`` (uses ``FREIGHTLINE_STACK_ENV`` or ``.freightline/stack.env``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import httpx

from tests.bench.rows import row, stack_env
from tests.integration.registry import private_registry

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
    with private_registry(env["POSTGRES_DSN"]) as url:
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
