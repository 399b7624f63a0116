"""The main job's engine stages on a secure stack (``FREIGHTLINE_SECURE``): the Flink window jobs, and the daily
batch (the finance files from the GCS emulator over https) and dbt through Airflow, over SASL_SSL with SCRAM-SHA-512
and the ACL table, the registry on HTTPS and PostgreSQL TLS-only with ``sslmode=verify-full``.

A private secure stack of what the services need (``secure_service_stack``: both brokers, PostgreSQL, the registry,
the storage servers; free ports, a temporary state directory), started once for the module, and a private Airflow
beside it (``running_airflow``: API server, scheduler, DAG processor; its own state directory and ports, the secure
stack's secrets folder, so its CA) whose metadata database and warehouse connection are the secure stack's
PostgreSQL over ``verify-full`` and whose tasks read the secure stack's ``stack.env``, as the stack's own Airflow
does. Over them the main job's stages contracts -> generator -> mirror -> enrichment and detection -> stream windows
-> sinks -> daily batch (airflow) -> dbt (airflow), 6,000 events of a fixed seed. The window jobs run on the
session's Flink cluster (which needs no TLS: the jobs carry every connection setting; its Prometheus reads their
late-event counters), submitted with the `stream` principal's SCRAM login and the stack's CA as PEM trust store, so
the ACL table's `stream` row is what lets them read and write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from batch_spark.contract import GCS_TOPICS, LAKE_TOPICS
from deploy import flink_jobs
from deploy.local import kafka_acls
from deploy.local.airflow import WAREHOUSE_CONNECTION, AirflowApiServer
from deploy.local.components import kafka_user_password
from deploy.local.context import StackContext
from deploy.local.flink import conf_dir
from deploy.local.settings import StackSettings
from deploy.pipeline import Report, execute
from tests.integration.airflow.support import running_airflow
from tests.integration.processes import free_port
from tests.integration.stack.support import SMALL_WORLD, secure_service_stack, stop_and_wipe
from tests.pipeline_counts import check_dbt_stage, check_service_stages, check_stream_stage, generated

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

EVENTS = 6_000
SEED = 20261207
STAGES = (
    "contracts",
    "generator",
    "mirror",
    "enrichment and detection",
    "stream windows",
    "sinks",
    "daily batch (airflow)",
    "dbt (airflow)",
)
# what the window jobs need of the session's stack: its Flink cluster, its Prometheus (the jobs' late-event counters)
# and its statsd_exporter (the drained job marked as stopped on purpose, as the stage does on the session's stack;
# Airflow's metrics go there too)
SESSION_ENDPOINTS = ("FLINK_REST_URL", "PROMETHEUS_URL", "STATSD_HOST", "STATSD_PORT", "ALERTMANAGER_URL")


@dataclass
class SecureEnginesRun:
    ctx: StackContext
    env: dict[str, str]
    report: Report
    submitted: list[dict[str, str]]  # the environment of each Flink job submission
    airflow: dict[str, str]  # the environment of Airflow's processes (what its tasks saw)


def airflow_context(stack_ctx: StackContext, work: Path, session: dict[str, str]) -> StackContext:
    """A private Airflow beside the secure stack: its own state directory (supervisor, ``AIRFLOW_HOME``, logs) and
    ports, the stack's settings (its PostgreSQL, ``secure``) and secrets folder (its CA, the passwords), the
    session's statsd_exporter and Alertmanager."""
    settings = stack_ctx.settings.model_copy(
        update={
            "home": str(work / "home"),
            "airflow_port": free_port(),
            "airflow_log_server_port": free_port(),
            "statsd_port": int(session["STATSD_PORT"]),
            "alertmanager_port": int(session["ALERTMANAGER_URL"].rsplit(":", 1)[1]),
        }
    )
    ctx = StackContext.create(settings)
    ctx.paths.home.mkdir(parents=True)
    ctx.paths.secrets.symlink_to(stack_ctx.paths.secrets.resolve())
    return ctx


@pytest.fixture(scope="module")
def secure_engines(tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]) -> Iterator[SecureEnginesRun]:
    missing = [key for key in SESSION_ENDPOINTS if key not in stack_env]
    if missing:
        pytest.fail(f"the session's stack exported no {', '.join(missing)} (its Flink cluster or monitoring)")
    stack = secure_service_stack(tmp_path_factory.mktemp("secure-engines"))
    ctx = stack.ctx
    # the Flink CLI of the submission reads the session cluster's client configuration (its jars are shared already)
    (ctx.paths.config / "flink").symlink_to(conf_dir(StackContext.create(StackSettings())).resolve())
    (ctx.paths.logs / "flink").mkdir(parents=True, exist_ok=True)
    submitted: list[dict[str, str]] = []
    job_ids: list[str] = []
    original = flink_jobs.submit

    def recording_submit(
        stack_ctx: StackContext, names: str | Sequence[str], rest_url: str, env: Any = None, **kwargs: Any
    ) -> str:
        submitted.append(dict(env or {}))
        job_ids.append(original(stack_ctx, names, rest_url, env, **kwargs))
        return job_ids[-1]

    rest_url = stack_env["FLINK_REST_URL"]
    try:
        started = time.monotonic()
        env = stack.up()
        session = {key: stack_env[key] for key in SESSION_ENDPOINTS}
        airflow_ctx = airflow_context(ctx, tmp_path_factory.mktemp("secure-airflow"), session)
        # the tasks find the secure stack's endpoints (the admin's Kafka login among them) and jars as the stack's
        # own Airflow's tasks find theirs: its state directory's stack.env
        with running_airflow(airflow_ctx, {"FREIGHTLINE_HOME": str(ctx.paths.home)}, timeout=600) as airflow_env:
            run_env = {**env, **SMALL_WORLD, **session, **AirflowApiServer().exports(airflow_ctx)}
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(flink_jobs, "submit", recording_submit)
                report = execute(stack, run_env, events=EVENTS, seed=SEED, stages=STAGES)
        report.add("Run", "duration (stack start included)", f"{time.monotonic() - started:.0f}s")
        report.render(Console(stderr=True, width=160))  # shown when a test fails
        yield SecureEnginesRun(ctx, run_env, report, submitted, airflow_env)
    finally:
        for job_id in job_ids:  # a failed run's job must not hold the session cluster's slot
            if flink_jobs.job_details(rest_url, job_id)["state"] in flink_jobs.ACTIVE_STATES:
                flink_jobs.cancel(rest_url, job_id)
        stop_and_wipe(stack)


def test_the_run_has_no_problem(secure_engines: SecureEnginesRun) -> None:
    report = secure_engines.report
    assert report.problems == [], report.problems
    assert report.figures.leftover and set(report.figures.leftover.values()) == {0}, report.figures.leftover
    check_service_stages(report.figures)


def test_the_window_jobs_ran_as_the_stream_principal_over_tls(secure_engines: SecureEnginesRun) -> None:
    env = secure_engines.env
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["SCHEMA_REGISTRY_URL"].startswith("https://") and env["SCHEMA_REGISTRY_SSL_CA_LOCATION"]
    assert "sslmode=verify-full" in env["POSTGRES_DSN"] and "sslrootcert=" in env["POSTGRES_DSN"]
    assert len(secure_engines.submitted) == 1  # every window job in one Flink job
    job_env = secure_engines.submitted[0]
    assert job_env["KAFKA_SASL_USERNAME"] == kafka_acls.STREAM
    own = job_env["KAFKA_SASL_PASSWORD"] == kafka_user_password(secure_engines.ctx, kafka_acls.STREAM)
    admin = job_env["KAFKA_SASL_PASSWORD"] == kafka_user_password(secure_engines.ctx, kafka_acls.ADMIN)
    assert (own, admin) == (True, False)  # compared, never shown
    for key in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SSL_CA_LOCATION", "SCHEMA_REGISTRY_URL", "POSTGRES_DSN"):
        assert (key, job_env[key]) == (key, env[key])


def test_every_window_job_agrees_with_its_oracle_in_kafka_and_postgres(secure_engines: SecureEnginesRun) -> None:
    check_stream_stage(secure_engines.report.figures, secure_engines.env)


def test_the_daily_batch_loads_exactly_what_the_sinks_landed(secure_engines: SecureEnginesRun) -> None:
    figures = secure_engines.report.figures
    batch = figures.batch
    assert batch is not None and batch.days
    # a fresh lake: the days hold this run's events only, each family's read once from HDFS or GCS, every row
    # loaded or rejected, none repeated
    assert sum(batch.read.values()) == figures.landed["hdfs"] + figures.landed["gcs"] and batch.only_this_run
    assert batch.accounted and set(batch.read) == set(LAKE_TOPICS), batch
    # the finance families came from the emulator over https, its certificate checked by the GCS connector against
    # the connector's trust store with the stack's CA (the class-path folder the stack exports)
    env = secure_engines.env
    assert env["GCS_ENDPOINT"].startswith("https://") and env["SPARK_JOBS_EXTRA_CLASS_PATH"]
    assert all(batch.read[family] > 0 for family in GCS_TOPICS), batch.read
    for family, topic in LAKE_TOPICS.items():
        assert (family, batch.read[family], batch.duplicates[family]) == (family, generated(figures, topic), 0)
        assert (family, batch.table_rows[f"raw.{family}"]) == (family, batch.loaded[family])
        assert batch.loaded[family] > 0, family
    for day, result in batch.reconciliation.items():
        assert (day, result.unexplained) == (day, [])


def test_dbt_builds_every_model_and_passes_every_test(secure_engines: SecureEnginesRun) -> None:
    dbt = secure_engines.report.figures.dbt
    check_dbt_stage(dbt)
    assert dbt is not None
    assert dbt.reference_rows and all(rows > 0 for rows in dbt.reference_rows.values()), dbt.reference_rows


def test_airflow_ran_the_batch_on_the_secure_stack(secure_engines: SecureEnginesRun) -> None:
    # its metadata database and its warehouse connection (the dbt profile's) are the TLS-only PostgreSQL, verified
    airflow = secure_engines.airflow
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"AIRFLOW_CONN_{WAREHOUSE_CONNECTION.upper()}"):
        assert "sslmode=verify-full" in airflow[key] and "sslrootcert=" in airflow[key], key
    # its tasks read Kafka (the reference load) as the batch's principal, whose row grants the reference topics only
    assert airflow["KAFKA_SASL_USERNAME"] == kafka_acls.BATCH
    own = airflow["KAFKA_SASL_PASSWORD"] == kafka_user_password(secure_engines.ctx, kafka_acls.BATCH)
    assert own  # compared, never shown
    figures = secure_engines.report.figures
    assert figures.batch is not None and figures.dbt is not None
    # one daily_analytics run per day, and the dbt figures are those of the dbt_build run its Asset event started
    assert sorted(figures.batch.runs) == sorted(figures.batch.days) and figures.dbt.run_id, figures.batch.runs
    airflow_rows = dict(secure_engines.report.sections["Airflow (batch)"])
    assert airflow_rows["dbt_build run"].startswith(f"{figures.dbt.run_id}: success"), airflow_rows
