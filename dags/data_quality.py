"""
### data_quality (daily)

Checks the warehouse's raw layer for the day (`ds`) once it has been loaded:

1. `raw_day_loaded` (sensor, rescheduled every 5 minutes for up to 6 hours): the day's orders and product views are
   in `raw.*`;
2. `rejected_share`: at most 1% of the day's raw rows were rejected (`raw.rejected`) for breaking a contract
   invariant or being unreadable.

Queries only, through the connection `freightline_warehouse` (`AIRFLOW_CONN_FREIGHTLINE_WAREHOUSE`).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.sql.operators.sql import SQLCheckOperator
from airflow.providers.common.sql.sensors.sql import SqlSensor
from airflow.sdk import dag

from dags.common import DAILY, DEFAULT_ARGS, WAREHOUSE_CONN_ID, start_date

DAY_LOADED = """
SELECT (SELECT count(*) FROM raw.orders WHERE ds = '{{ ds }}') > 0
   AND (SELECT count(*) FROM raw.product_views WHERE ds = '{{ ds }}') > 0
"""

REJECTED_SHARE = """
SELECT (SELECT count(*) FROM raw.rejected WHERE ds = '{{ ds }}')
       <= 0.01 * ((SELECT count(*) FROM raw.orders WHERE ds = '{{ ds }}')
                + (SELECT count(*) FROM raw.product_views WHERE ds = '{{ ds }}')
                + (SELECT count(*) FROM raw.clickstream WHERE ds = '{{ ds }}')
                + (SELECT count(*) FROM raw.shipment_events WHERE ds = '{{ ds }}'))
"""


@dag(
    dag_id="data_quality",
    schedule=DAILY,
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=7),
    default_args=DEFAULT_ARGS,
    tags=["freightline", "quality", "warehouse"],
    doc_md=__doc__,
)
def data_quality() -> None:
    loaded = SqlSensor(
        task_id="raw_day_loaded",
        conn_id=WAREHOUSE_CONN_ID,
        sql=DAY_LOADED,
        mode="reschedule",
        poke_interval=300,
        timeout=6 * 3600,
        execution_timeout=dt.timedelta(minutes=5),
    )
    rejected = SQLCheckOperator(
        task_id="rejected_share",
        conn_id=WAREHOUSE_CONN_ID,
        sql=REJECTED_SHARE,
        execution_timeout=dt.timedelta(minutes=5),
    )
    loaded >> rejected


data_quality()
