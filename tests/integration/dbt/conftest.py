"""One world per session for the dbt tests: generated events in a private database (``world.py``), the reference
data loaded by the real Spark job (while the fixture loads the events beside it), and one ``dbt build`` over it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.dbt import run_dbt, run_results
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.spark import run_job
from tests.integration.batch_spark.support import private_database
from tests.integration.dbt.world import World, create_schemas, generate, load_events, produce_reference

SEED = 20261205
RECORDS = 12_000  # about 3.5 minutes of simulated time: every family, deliveries and payments included


@dataclass
class Built:
    env: dict[str, str]  # the stack's endpoints with POSTGRES_DSN on the private database
    world: World
    target: Path  # dbt's target folder of this session
    log: Path
    build_code: int
    build_output: str
    build: dict[str, Any]  # run_results.json of the build
    load_reference: dict[str, Any]  # the Spark job's report

    def dbt(self, *args: str) -> tuple[int, str]:
        result = run_dbt(args, self.env, self.target, self.log)
        return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="session")
def built(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    work = tmp_path_factory.mktemp("dbt")
    prefix = f"dbt-{uuid.uuid4().hex[:10]}-"
    # the world ends a few minutes before now, so that every source is fresh
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(microsecond=0)
    world = generate(SEED, start, RECORDS)
    produce_reference(stack_env, prefix, world.reference)
    with private_database(stack_env["POSTGRES_DSN"]) as dsn:
        # four dbt threads: the build's nodes are small queries, so most of a thread's time is waiting on PostgreSQL
        env = {**stack_env, "POSTGRES_DSN": dsn, "SPARK_JOBS_TOPIC_PREFIX": prefix, "DBT_THREADS": "4"}
        paths = StackContext.create(StackSettings()).paths
        create_schemas(dsn)  # before the two writers below, which would otherwise race to create them
        with ThreadPoolExecutor(1) as spark:
            # the Spark job writes raw.reference_* only, the fixture every other table: they run side by side
            loading = spark.submit(run_job, "load-reference", paths, env, work / "spark.log")
            load_events(dsn, world)
            report = loading.result()
        target, log = work / "target", work / "dbt.log"
        result = run_dbt(["build"], env, target, log)
        yield Built(
            env, world, target, log, result.returncode, result.stdout + result.stderr, run_results(target), report
        )
