"""
### lake_to_warehouse (hourly)

Loads the lake's raw events into the warehouse's `raw.*` tables every hour: `freightline spark load-raw --ds <day>`
(`batch_spark.load_raw`) for the day of the run's hour. The load replaces the whole day in one transaction per
family, so a run picks up every file landed so far (late events included) and re-running an hour, or any hour of
the day, leaves the same rows. No catch-up: the next hour's run reloads the day anyway.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from dags.common import DEFAULT_ARGS, HOURLY, freightline, start_date


@dag(
    dag_id="lake_to_warehouse",
    schedule=HOURLY,
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=55),
    default_args=DEFAULT_ARGS,
    tags=["freightline", "lake", "warehouse"],
    doc_md=__doc__,
)
def lake_to_warehouse() -> None:
    @task.bash(execution_timeout=dt.timedelta(minutes=40))
    def load_raw() -> str:
        """The day's raw events from the lake into `raw.*` (idempotent per day)."""
        return freightline("spark", "load-raw", "--ds", "{{ ds }}")

    load_raw()


lake_to_warehouse()
