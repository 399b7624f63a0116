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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.flink import client_environment, flink_home, flink_python
from deploy.observability_stage import Prometheus
from stream_processors import flink_sql
from stream_processors.flink_sql import WindowJob, WindowJobSettings, pipeline_names
from stream_processors.window_jobs import JOBS as WINDOW_JOBS


@dataclass(frozen=True)
class FlinkJob:
    script: str  # the module flink run -py starts (its main builds and submits the job)
    settings_prefix: str
    job: WindowJob
    settings: type[WindowJobSettings]


JOBS = {
    name: FlinkJob(f"stream_processors/{name}.py", str(settings.model_config["env_prefix"]), job, settings)
    for name, (job, settings) in WINDOW_JOBS.items()
}
# runs several window jobs as one Flink job (``stream_processors/window_jobs.py``, the job names as arguments): what
# the main job's stream stage submits with every job, and what compose and Kubernetes run (``deploy/manifests``)
TOGETHER_MODULE = "stream_processors.window_jobs"
TOGETHER_SCRIPT = TOGETHER_MODULE.replace(".", "/") + ".py"

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


def flink_job_config(names: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """The configuration the window jobs ``names`` set when submitted together with ``env`` (their settings'
    checkpoint interval, parallelism, idle timeout, the Flink job's name): the one ``stream_processors`` computes;
    ``ValueError`` when their job-wide settings differ (the submission would stop on it)."""
    jobs = [(job(name).job, job_settings(job(name), env)) for name in names]
    name = flink_sql.pipeline_name(jobs)
    return flink_sql.shared_config([flink_sql.job_config(settings, name) for _, settings in jobs])


def ensure_postgres_table(spec: FlinkJob, env: Mapping[str, str]) -> None:
    import psycopg

    from services.common.settings import PostgresSettings

    settings = job_settings(spec, env)
    dsn = env.get("POSTGRES_DSN") or PostgresSettings().dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(spec.job.postgres_ddl(settings.postgres_table).encode())


def submit(
    ctx: StackContext,
    names: str | Sequence[str],
    rest_url: str,
    env: Mapping[str, str] | None = None,
    *,
    from_savepoint: str | None = None,
) -> str:
    """Submit job ``names`` detached (several: as one Flink job, ``stream_processors/window_jobs.py``); returns its
    job id. ``env`` adds settings (topics, endpoints) to the jobs'; ``from_savepoint`` resumes the job's state (and
    its sources' offsets) from a savepoint or retained checkpoint of the same job (the same names)."""
    names = [names] if isinstance(names, str) else list(names)
    specs = [job(name) for name in names]
    if not specs:
        raise FlinkError("no job to submit")
    job_env = {**os.environ, **(env or {})}
    for spec in specs:
        ensure_postgres_table(spec, job_env)
    script, arguments = (specs[0].script, []) if len(specs) == 1 else (TOGETHER_SCRIPT, names)
    address = urlsplit(rest_url)
    python = str(flink_python())
    command = [
        str(flink_home() / "bin" / "flink"),
        "run",
        "--detached",
        *(["--fromSavepoint", from_savepoint] if from_savepoint else []),
        "-py",
        str(REPO_ROOT / script),
        "-pyclientexec",
        python,
        "-pyexec",
        python,
        f"-Drest.address={address.hostname}",
        f"-Drest.port={address.port or 80}",
        *arguments,
    ]
    process_env = {**job_env, **client_environment(ctx), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, env=process_env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    output = result.stdout + result.stderr
    found = _SUBMITTED.search(output)
    if result.returncode != 0 or not found:
        raise FlinkError(f"submitting {', '.join(names)} failed (exit {result.returncode}):\n{output[-20000:]}")
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


def failures(rest_url: str, job_id: str) -> list[str]:
    """The job's failures so far, newest first, each as its root cause (``root_causes``)."""
    response = httpx.get(f"{rest_url}/jobs/{job_id}/exceptions", timeout=10)
    response.raise_for_status()
    return root_causes(response.json())


def root_causes(exceptions: Mapping[str, Any]) -> list[str]:
    """Each failure of a job's exception history (``/jobs/<id>/exceptions``) as one line: the last ``Caused by:``
    of its stack trace (such as a connector's refused login or ACL), else the trace's first line."""
    found = []
    for entry in exceptions.get("exceptionHistory", {}).get("entries", []):
        lines = [line.strip() for line in str(entry.get("stacktrace") or entry.get("exceptionName", "")).splitlines()]
        causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
        found.append(causes[-1] if causes else next((line for line in lines if line), "(no stack trace)"))
    return found


ACTIVE_STATES = frozenset({"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "CANCELLING"})


def stop_active(rest_url: str, pipeline_name: str | Collection[str], timeout_s: float = 120) -> list[str]:
    """Cancel every active job running a window job of pipeline name ``pipeline_name`` (or of any of several),
    alone or with others (``stream_processors.window_jobs``): its open Kafka transactions are aborted, never
    committed. Waits until each has ended; returns their ids."""
    wanted = {pipeline_name} if isinstance(pipeline_name, str) else set(pipeline_name)
    active = [
        item["jid"]
        for item in jobs(rest_url)
        if wanted.intersection(pipeline_names(item["name"])) and item["state"] in ACTIVE_STATES
    ]
    for job_id in active:
        cancel(rest_url, job_id)
    deadline = time.monotonic() + timeout_s
    while any(job_details(rest_url, job_id)["state"] in ACTIVE_STATES for job_id in active):
        if time.monotonic() > deadline:
            raise FlinkError(f"jobs {active} ({sorted(wanted)}) did not end within {timeout_s} s of cancelling")
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


# a window job's late events: the records-in counter of its late-events sink's writer (``WindowJob.late_table``), as
# the TaskManagers' Prometheus reporters serve it (Flink's operator name "<job>_late_events[<n>]: Writer", every
# character outside [a-zA-Z0-9:_] as "_"); flink.rules.yml records and alerts on the same series
LATE_EVENTS_SERIES = 'flink_taskmanager_job_task_operator_numRecordsIn{operator_name=~".+_late_events_[0-9]+_:_Writer"}'
_LATE_WRITER = re.compile(r"^(?P<job>.+)_late_events_[0-9]+_:_Writer$")


def late_counts(by_operator: Mapping[str, float]) -> dict[str, int]:
    """Late events per window job from counters keyed by operator name (label value): the late-events writers'."""
    counts: dict[str, int] = {}
    for operator, value in by_operator.items():
        if found := _LATE_WRITER.match(operator):
            counts[found["job"]] = counts.get(found["job"], 0) + int(value)
    return counts


def late_events_seen(
    prometheus_url: str, job_id: str, names: Collection[str], after: float, timeout_s: float = 60
) -> dict[str, int]:
    """The late events each window job (``names``, ``WindowJob.name``) of Flink job ``job_id`` has written, as the
    stack's Prometheus scraped them after ``after`` (a Unix time): its late-events writer's records-in counter,
    summed over subtasks. Once the job has read every event, a scrape after that moment holds the final counts;
    this waits for one (a scrape interval). The job must still run: its series end with it."""
    selector = LATE_EVENTS_SERIES.replace("{", f'{{job_id="{job_id}", ', 1)
    query = f"sum by (operator_name) ({selector} and timestamp({selector}) > {after:.3f})"
    prometheus = Prometheus(prometheus_url)
    deadline = time.monotonic() + timeout_s
    while True:
        counts = late_counts(prometheus.by_label(query, "operator_name", time.time()))
        if set(names) <= counts.keys():
            return {name: counts[name] for name in names}
        if time.monotonic() > deadline:
            raise FlinkError(
                f"Prometheus ({prometheus_url}) scraped no late-event counter of {sorted(set(names) - counts.keys())} "
                f"(job {job_id}) within {timeout_s} s"
            )
        time.sleep(1)


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
