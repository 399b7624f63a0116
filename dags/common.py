"""What every Freightline DAG shares: its owner, default arguments (retries with exponential back-off, timeouts,
the failure alert), the first day of the daily schedules, the Asset the daily run publishes, and the project's
CLI as the command of a task.

Nothing here holds business logic: the tasks run ``freightline`` commands (``deploy/``) and the jobs they call.
Connections and variables come from the environment (``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``) that the stack gives
Airflow's processes (``deploy/local/airflow.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Variable

OWNER = "freightline-data"
WAREHOUSE_CONN_ID = "freightline_warehouse"
ALERT_NAME = "AirflowTaskFailed"
FAILURE_METRIC = "freightline.task_failure_alerts"
# The first day the daily DAGs catch up from: the stack passes the day it first prepared Airflow.
START_DATE_VARIABLE = "FREIGHTLINE_AIRFLOW_DAGS_START_DATE"
DEFAULT_START_DATE = "2026-01-01"

# Published by ``daily_analytics`` once a day's warehouse tables are written and reconciled; ``dbt_build`` runs on it.
WAREHOUSE_DAY = Asset(name="freightline_warehouse_day", uri="freightline://warehouse/day")

HOURLY = CronDataIntervalTimetable("0 * * * *", timezone="UTC")
# A data interval per UTC day: a run's ``ds`` is the day it processes (its logical date, the interval's start).
DAILY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")

log = logging.getLogger(__name__)


def start_date() -> dt.datetime:
    day = dt.date.fromisoformat(os.environ.get(START_DATE_VARIABLE) or DEFAULT_START_DATE)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def freightline(*args: str) -> str:
    """A task's command line: the project's CLI (variable ``freightline_cli``) with ``args`` (Jinja allowed)."""
    return " ".join(["{{ var.value.freightline_cli }}", *(a if "{{" in a else shlex.quote(a) for a in args)])


def alert_on_failure(context: Any) -> None:
    """A task failed for good (its retries spent): an alert to Alertmanager (variable ``alertmanager_url``), else
    (no Alertmanager, or it does not answer) an error log line and the ``freightline.task_failure_alerts`` metric."""
    ti = context["ti"]
    labels = {
        "alertname": ALERT_NAME,
        "severity": "warning",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
    }
    error = context.get("exception")
    description = f"{ti.dag_id}.{ti.task_id} failed in run {ti.run_id} after {ti.try_number} tries: {error}"
    url = Variable.get("alertmanager_url", default=None)
    if url:
        import httpx

        alert = {"labels": labels, "annotations": {"summary": description[:500]}}
        try:
            httpx.post(f"{url.rstrip('/')}/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
        except httpx.HTTPError as failure:
            log.error("alert not delivered to %s: %s", url, failure)
        else:
            log.info("alert sent to %s: %s", url, description)
            return
    from airflow.sdk.observability.stats import Stats

    log.error("task failed, no alert delivered: %s", description)
    Stats.incr(FAILURE_METRIC, tags={"dag_id": ti.dag_id, "task_id": ti.task_id})


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=30),
    "on_failure_callback": alert_on_failure,
}
