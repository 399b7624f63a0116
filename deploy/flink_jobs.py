"""Running the PyFlink jobs (``stream_processors/``) on a Flink session cluster: submit, list, cancel, savepoint.

Submission goes through Flink's own CLI (``flink run -d -py``, from the PyFlink environment, with the local
stack's ``FLINK_LIB_DIR`` so the client plans with the same connectors as the cluster); everything else is a call
to the cluster's REST API (``FLINK_REST_URL``). A job's PostgreSQL table is created (idempotent DDL) before the
job is submitted.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.flink import client_environment, flink_home, flink_python
from stream_processors import (
    category_top_products,
    product_views,
    route_shipment_delays,
    service_error_rate,
    store_order_revenue,
)
from stream_processors.flink_sql import WindowJob, WindowJobSettings


@dataclass(frozen=True)
class FlinkJob:
    script: str  # the module flink run -py starts (its main builds and submits the job)
    settings_prefix: str
    job: WindowJob
    settings: type[WindowJobSettings]


JOBS = {
    "product_views": FlinkJob(
        "stream_processors/product_views.py",
        "PRODUCT_VIEWS_JOB_",
        product_views.JOB,
        product_views.ProductViewsJobSettings,
    ),
    "store_order_revenue": FlinkJob(
        "stream_processors/store_order_revenue.py",
        "STORE_ORDER_REVENUE_JOB_",
        store_order_revenue.JOB,
        store_order_revenue.StoreOrderRevenueJobSettings,
    ),
    "route_shipment_delays": FlinkJob(
        "stream_processors/route_shipment_delays.py",
        "ROUTE_SHIPMENT_DELAYS_JOB_",
        route_shipment_delays.JOB,
        route_shipment_delays.RouteShipmentDelaysJobSettings,
    ),
    "service_error_rate": FlinkJob(
        "stream_processors/service_error_rate.py",
        "SERVICE_ERROR_RATE_JOB_",
        service_error_rate.JOB,
        service_error_rate.ServiceErrorRateJobSettings,
    ),
    "category_top_products": FlinkJob(
        "stream_processors/category_top_products.py",
        "CATEGORY_TOP_PRODUCTS_JOB_",
        category_top_products.JOB,
        category_top_products.CategoryTopProductsJobSettings,
    ),
}

_SUBMITTED = re.compile(r"JobID ([0-9a-f]{32})")


class FlinkError(RuntimeError):
    """A job could not be submitted or controlled."""


def job(name: str) -> FlinkJob:
    if name not in JOBS:
        raise FlinkError(f"unknown job {name!r}; known: {sorted(JOBS)}")
    return JOBS[name]


def job_settings(spec: FlinkJob, env: Mapping[str, str]) -> WindowJobSettings:
    """The job's settings as it will read them from ``env`` (its ``<PREFIX>*`` variables)."""
    return spec.settings.model_validate(
        {k[len(spec.settings_prefix) :].lower(): v for k, v in env.items() if k.startswith(spec.settings_prefix)}
    )


def ensure_postgres_table(spec: FlinkJob, env: Mapping[str, str]) -> None:
    import psycopg

    from services.common.settings import PostgresSettings

    settings = job_settings(spec, env)
    dsn = env.get("POSTGRES_DSN") or PostgresSettings().dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(spec.job.postgres_ddl(settings.postgres_table).encode())


def submit(
    ctx: StackContext,
    name: str,
    rest_url: str,
    env: Mapping[str, str] | None = None,
    *,
    from_savepoint: str | None = None,
) -> str:
    """Submit job ``name`` detached; returns its job id. ``env`` adds settings (topics, endpoints) to the job's;
    ``from_savepoint`` resumes the job's state (and its sources' offsets) from a savepoint or retained checkpoint."""
    spec = job(name)
    job_env = {**os.environ, **(env or {})}
    ensure_postgres_table(spec, job_env)
    address = urlsplit(rest_url)
    python = str(flink_python())
    command = [
        str(flink_home() / "bin" / "flink"),
        "run",
        "--detached",
        *(["--fromSavepoint", from_savepoint] if from_savepoint else []),
        "-py",
        str(REPO_ROOT / spec.script),
        "-pyclientexec",
        python,
        "-pyexec",
        python,
        f"-Drest.address={address.hostname}",
        f"-Drest.port={address.port or 80}",
    ]
    process_env = {**job_env, **client_environment(ctx), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, env=process_env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    output = result.stdout + result.stderr
    found = _SUBMITTED.search(output)
    if result.returncode != 0 or not found:
        raise FlinkError(f"submitting {name} failed (exit {result.returncode}):\n{output[-20000:]}")
    return found.group(1)


def jobs(rest_url: str) -> list[dict[str, Any]]:
    """Every job the cluster knows: id, name, state, start time (``/jobs/overview``)."""
    response = httpx.get(f"{rest_url}/jobs/overview", timeout=10)
    response.raise_for_status()
    return list(response.json()["jobs"])


def job_details(rest_url: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{rest_url}/jobs/{job_id}", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def slots_total(rest_url: str) -> int:
    """The task slots of the cluster's TaskManagers (a job of parallelism 1 takes one)."""
    response = httpx.get(f"{rest_url}/overview", timeout=10)
    response.raise_for_status()
    return int(response.json()["slots-total"])


def cancel(rest_url: str, job_id: str) -> None:
    response = httpx.patch(f"{rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
    if response.status_code not in (200, 202):
        raise FlinkError(f"cancelling {job_id} failed: {response.status_code} {response.text}")


def savepoint(rest_url: str, job_id: str, *, stop: bool = False, drain: bool = False, timeout_s: float = 300) -> str:
    """Take a savepoint (``stop``: and stop the job with it; ``drain``: after advancing event time to the end, so
    every open window fires: the end of a bounded run, not an upgrade); returns the savepoint's location."""
    path = "stop" if stop else "savepoints"
    body: dict[str, Any] = {"drain": drain} if stop else {"cancel-job": False}
    response = httpx.post(f"{rest_url}/jobs/{job_id}/{path}", json=body, timeout=10)
    if response.status_code != 202:
        raise FlinkError(f"savepoint of {job_id} refused: {response.status_code} {response.text}")
    trigger = response.json()["request-id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = httpx.get(f"{rest_url}/jobs/{job_id}/savepoints/{trigger}", timeout=10).json()
        if status["status"]["id"] == "COMPLETED":
            operation = status["operation"]
            if "failure-cause" in operation:
                raise FlinkError(f"savepoint of {job_id} failed: {operation['failure-cause']}")
            return str(operation["location"])
        time.sleep(0.5)
    raise FlinkError(f"savepoint of {job_id} did not complete within {timeout_s} s")


ACTIVE_STATES = frozenset({"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "CANCELLING"})


def stop_active(rest_url: str, pipeline_name: str, timeout_s: float = 120) -> list[str]:
    """Cancel every active job named ``pipeline_name`` (its open Kafka transactions are aborted, never committed)
    and wait until each has ended; returns their ids."""
    active = [
        item["jid"] for item in jobs(rest_url) if item["name"] == pipeline_name and item["state"] in ACTIVE_STATES
    ]
    for job_id in active:
        cancel(rest_url, job_id)
    deadline = time.monotonic() + timeout_s
    while any(job_details(rest_url, job_id)["state"] in ACTIVE_STATES for job_id in active):
        if time.monotonic() > deadline:
            raise FlinkError(f"jobs {active} ({pipeline_name}) did not end within {timeout_s} s of cancelling")
        time.sleep(0.5)
    return active


STOPPED_ON_PURPOSE = "freightline.flink_job_stopped"
"""The StatsD gauge (``freightline_flink_job_stopped_on_purpose{job_id}`` in Prometheus) that marks a job the
deployment stopped itself, so that ``FreightlineFlinkJobsLost`` does not take it for lost."""


def record_stopped(env: Mapping[str, str], job_ids: Iterable[str]) -> bool:
    """Tell the stack's statsd_exporter (``STATSD_HOST``, ``STATSD_PORT``) that the deployment stopped these jobs on
    purpose (value: the unix time); False, and nothing sent, when the stack exports no StatsD address."""
    host, port = env.get("STATSD_HOST"), env.get("STATSD_PORT")
    if not host or not port:
        return False
    now = int(time.time())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for job_id in job_ids:
            sock.sendto(f"{STOPPED_ON_PURPOSE},job_id={job_id}:{now}|g".encode(), (host, int(port)))
    return True


def wait_finished(rest_url: str, job_id: str, timeout_s: float = 120) -> None:
    """Until the job has ended; a job ending otherwise than FINISHED is an error."""
    deadline = time.monotonic() + timeout_s
    while (state := job_details(rest_url, job_id)["state"]) in ACTIVE_STATES:
        if time.monotonic() > deadline:
            raise FlinkError(f"job {job_id} did not end within {timeout_s} s")
        time.sleep(0.5)
    if state != "FINISHED":
        raise FlinkError(f"job {job_id} ended {state}")


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    name: str
    state: str
    checkpoint_age_s: float | None  # since the last completed checkpoint; None before the first


def summaries(rest_url: str) -> list[JobSummary]:
    """Each job's state and the age of its last completed checkpoint (``freightline status``)."""
    rows = []
    for item in jobs(rest_url):
        age = None
        if item["state"] == "RUNNING":
            response = httpx.get(f"{rest_url}/jobs/{item['jid']}/checkpoints", timeout=10)
            completed = (response.json().get("latest") or {}).get("completed") if response.status_code == 200 else None
            if completed:
                age = max(time.time() - completed["latest_ack_timestamp"] / 1000, 0.0)
        rows.append(JobSummary(item["jid"], item["name"], item["state"], age))
    return rows
