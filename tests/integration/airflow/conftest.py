"""Session fixtures of the Airflow tests: one generated day landed by the real sinks into a private lake root
and bucket, a private warehouse database, and Airflow started once (its own state directory and ports, its
metadata database on the shared PostgreSQL) with the tasks pointed at that lake and warehouse."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.settings import StackSettings
from tests.integration.airflow.support import dag_test, running_airflow
from tests.integration.batch_spark.support import generate, land, private_database, produce, remove_landed
from tests.integration.processes import free_port

SEED = 20261103
DAY = dt.date(2026, 11, 3)
START = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)  # the records all fall on DAY
RECORDS = 3_000


@dataclass
class LakeDay:
    day: dt.date
    dsn: str  # the private warehouse
    task_env: dict[str, str]  # what the tasks need on top of the stack's endpoints


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
    produce(stack_env, prefix, generate(SEED, START, RECORDS))
    land(stack_env, prefix, f"{root}/raw", bucket, work)
    try:
        with private_database(stack_env["POSTGRES_DSN"]) as dsn:
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
            yield LakeDay(DAY, dsn, task_env)
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
        airflow_dags_start_date=(DAY - dt.timedelta(days=1)).isoformat(),
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
