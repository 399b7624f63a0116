"""Session fixtures of the Airflow tests: two generated days (the world crosses last midnight, UTC: recent enough for
dbt's source freshness) landed by the real sinks into a private lake root and bucket, the reference data on the
test's own topics, a private warehouse database holding the Flink windows of the same events (the stream oracle's,
as after a drain: the reconciliation holds), and Airflow started once (its own state directory and ports, its
metadata database on the shared PostgreSQL) with the tasks pointed at that lake, those topics and that warehouse."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from batch_spark.contract import LAKE_TOPICS
from batch_spark.daily import TABLES
from deploy.airflow_api import AirflowApi
from deploy.local.airflow import AirflowApiServer
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.settings import StackSettings
from tests.integration.airflow.support import dag_test, running_airflow
from tests.integration.batch_spark.support import land, private_database, produce, remove_landed
from tests.integration.dbt.world import generate, load_windows, produce_reference
from tests.integration.processes import free_port

SEED = 20261103
RECORDS = 3_000  # about 50 s of simulated time, half of it on each side of midnight
BEFORE_MIDNIGHT = dt.timedelta(seconds=26)
DAILY = "daily_analytics"
WAREHOUSE = [*(f"raw.{family}" for family in LAKE_TOPICS), "raw.rejected", *(table.table for table in TABLES)]
AUDIT = "SELECT family, ds, read, loaded, rejected, duplicates, unreadable_files FROM raw.load_audit"


@dataclass
class LakeDay:
    days: tuple[dt.date, dt.date]  # the world's two days: the day before yesterday and yesterday (UTC)
    dsn: str  # the private warehouse
    task_env: dict[str, str]  # what the tasks need on top of the stack's endpoints

    @property
    def day(self) -> dt.date:
        """Yesterday: the day the single-day tests run."""
        return self.days[1]


@dataclass
class AirflowUnderTest:
    ctx: StackContext
    env: dict[str, str]  # Airflow's processes' environment (for dag.test() against the same database)
    work: Path


@pytest.fixture(scope="session")
def lake_day(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakeDay]:
    work = tmp_path_factory.mktemp("airflow-lake")
    prefix = f"airflow-{uuid.uuid4().hex[:10]}-"
    root, bucket = f"/tests/{prefix.rstrip('-')}", prefix.rstrip("-")
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    world = generate(SEED, dt.datetime.combine(yesterday, dt.time(), dt.UTC) - BEFORE_MIDNIGHT, RECORDS)
    produce(stack_env, prefix, [(name, value) for name, values in world.events.items() for value in values])
    produce_reference(stack_env, prefix, world.reference)
    land(stack_env, prefix, f"{root}/raw", bucket, work)
    try:
        with private_database(stack_env["POSTGRES_DSN"]) as dsn:
            with psycopg.connect(dsn) as conn:
                load_windows(conn, world)
            task_env = {
                **stack_env,
                "POSTGRES_DSN": dsn,
                "AIRFLOW_CONN_FREIGHTLINE_WAREHOUSE": dsn,
                "SPARK_JOBS_LAKE_ROOT": f"{root}/raw",
                "SPARK_JOBS_ANALYTICS_ROOT": f"{root}/analytics",
                "SPARK_JOBS_TOPIC_PREFIX": prefix,
                "GCS_BUCKET": bucket,
                # the Spark jars setup resolved into this checkout's state directory
                "FREIGHTLINE_HOME": str(REPO_ROOT / ".freightline"),
            }
            yield LakeDay((yesterday - dt.timedelta(days=1), yesterday), dsn, task_env)
    finally:
        remove_landed(stack_env, root, bucket)


@pytest.fixture(scope="session")
def airflow(
    stack_env: dict[str, str], lake_day: LakeDay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowUnderTest]:
    work = tmp_path_factory.mktemp("airflow")
    postgres_port = int(stack_env["POSTGRES_DSN"].rsplit(":", 1)[1].split("/", 1)[0])
    alertmanager_port = int(stack_env["ALERTMANAGER_URL"].rsplit(":", 1)[1])
    settings = StackSettings(
        home=str(work / "home"),
        postgres_port=postgres_port,
        alertmanager_port=alertmanager_port,
        airflow_port=free_port(),
        airflow_log_server_port=free_port(),
        airflow_database=f"airflow_{uuid.uuid4().hex[:10]}",
        airflow_dags_start_date=lake_day.days[0].isoformat(),
    )
    ctx = StackContext.create(settings)
    # the scheduler creates no run of its own (no catch-up of the schedules): only the tests' runs exist
    task_env = {**lake_day.task_env, "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    with running_airflow(ctx, task_env, timeout=600) as env:
        yield AirflowUnderTest(ctx, env, work)


@pytest.fixture(scope="session")
def loaded_day(airflow: AirflowUnderTest, lake_day: LakeDay) -> dict[str, Any]:
    """``lake_to_warehouse`` run for the day with ``dag.test()``: the day's raw tables in the private warehouse."""
    return dag_test("lake_to_warehouse", lake_day.day.isoformat(), airflow.env, airflow.work / "lake_to_warehouse.log")


@dataclass
class Backfill:
    """What a backfill of ``daily_analytics`` left: its runs (state, tasks' states and tries, the Assets their events
    name) and every row of the batch's tables."""

    runs: dict[str, dict[str, Any]]  # per day
    warehouse: dict[str, list[str]]


@pytest.fixture(scope="session")
def backfills(airflow: AirflowUnderTest, lake_day: LakeDay) -> list[Backfill]:
    """``daily_analytics`` over the world's two days, backfilled twice through the REST API (``airflow backfill
    create``) and run by the session's scheduler and LocalExecutor."""
    api = AirflowApi.from_env(AirflowApiServer().exports(airflow.ctx))
    first, last = (dt.datetime.combine(day, dt.time(), dt.UTC) for day in lake_day.days)
    result = []
    try:
        api.wait_for_dag(DAILY, timeout=300)  # parsed by the DAG processor
        api.set_paused(DAILY, False)
        for _ in range(2):
            api.wait_backfill(api.backfill(DAILY, first, last), timeout=1800, interval=2)
            runs = {}
            for run in api.runs(DAILY, logical_date_gte=first.isoformat(), logical_date_lte=last.isoformat()):
                tasks = api.tasks(DAILY, run["dag_run_id"])
                events = api.asset_events(DAILY, run["dag_run_id"])
                runs[run["logical_date"][:10]] = {
                    "run_id": run["dag_run_id"],
                    "state": run["state"],
                    "tasks": {task.task_id: (task.state, task.try_number) for task in tasks},
                    "assets": sorted({str(event["name"]) for event in events}),
                }
            result.append(Backfill(runs, warehouse(lake_day.dsn)))
    finally:
        api.close()
    return result


def warehouse(dsn: str) -> dict[str, list[str]]:
    """Every row of the batch's tables (and the load counts, without their time), in a comparable form."""
    with psycopg.connect(dsn) as conn:
        found = {table: conn.execute(f"SELECT * FROM {table}".encode()).fetchall() for table in WAREHOUSE}
        found["raw.load_audit"] = conn.execute(AUDIT.encode()).fetchall()
    return {table: sorted(map(repr, rows)) for table, rows in found.items()}
