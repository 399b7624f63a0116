"""A DAG of one task that always fails, with the project's default arguments and a short retry delay: the test of
the retries and the failure alert (``tests/integration/airflow/test_dag_runs.py``)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from dags.common import DEFAULT_ARGS


@dag(
    dag_id="always_fails",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={**DEFAULT_ARGS, "retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    tags=["test"],
)
def always_fails() -> None:
    @task.bash
    def fail() -> str:
        return "echo 'the job failed' >&2; exit 3"

    fail()


always_fails()
