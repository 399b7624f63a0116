"""
### daily_analytics (daily, with catch-up)

For each UTC day (`ds`, the run's logical date):

1. `spark_batch`: `freightline spark batch --ds <ds>`: the day's `raw.*` tables and the `analytics.*` daily tables
   (and their Parquet copies), in one Spark application, each table's day replaced in one transaction;
2. `reconcile`: `freightline reconcile --ds <ds> --enforce fresh-lake`: the daily aggregates against the streaming
   windows of the day; fails when a difference is not accounted for by late events on a day whose lake holds only
   what the stream counted; a day whose lake holds more (events of earlier pipeline runs, whose windows a later
   run's replaced: its daily totals exceed the windows' and late events' totals) is reported, not failed;
3. `publish`: marks the Asset `freightline_warehouse_day` updated, which starts `dbt_build`.

Catch-up from the stack's start day; `airflow backfill create --dag-id daily_analytics --from-date D1 --to-date D2`
reruns a range (idempotent: every step replaces its day).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from dags.common import DAILY, DEFAULT_ARGS, WAREHOUSE_DAY, freightline, start_date


@dag(
    dag_id="daily_analytics",
    schedule=DAILY,
    start_date=start_date(),
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=3),
    default_args=DEFAULT_ARGS,
    tags=["freightline", "spark", "analytics"],
    doc_md=__doc__,
)
def daily_analytics() -> None:
    @task.bash(execution_timeout=dt.timedelta(hours=1))
    def spark_batch() -> str:
        """The day's raw and analytics tables (Spark, idempotent per day)."""
        return freightline("spark", "batch", "--ds", "{{ ds }}")

    @task.bash(execution_timeout=dt.timedelta(minutes=20))
    def reconcile() -> str:
        """The day's aggregates against the streaming windows."""
        return freightline("reconcile", "--ds", "{{ ds }}", "--enforce", "fresh-lake")

    @task(outlets=[WAREHOUSE_DAY], execution_timeout=dt.timedelta(minutes=5))
    def publish(**context: object) -> str:
        """The day's warehouse is complete: an Asset event (``dbt_build`` follows)."""
        return str(context["ds"])

    spark_batch() >> reconcile() >> publish()


daily_analytics()
