"""Every DAG run in-process with ``dag.test()`` against the shared stack's PostgreSQL and lake on a generated day
(the run's state is checked: ``dag.test()`` returns normally when a run fails), and a failing task retried, then
alerting through the stack's Alertmanager."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.airflow.conftest import AirflowUnderTest, LakeDay
from tests.integration.airflow.support import FAILING_DAGS, dag_test
from tests.integration.batch_spark.support import rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


def test_lake_to_warehouse_loads_the_days_raw_tables(loaded_day: dict[str, Any], lake_day: LakeDay) -> None:
    assert loaded_day["state"] == "success", loaded_day
    assert loaded_day["tasks"] == {"load_raw": {"state": "success", "try_number": 1}}
    day = lake_day.day.isoformat()
    for family in ("orders", "product_views", "clickstream", "shipment_events"):
        [(count,)] = rows(lake_day.dsn, f"SELECT count(*) FROM raw.{family} WHERE ds = '{day}'")
        assert count > 0, family


def test_daily_analytics_writes_the_day_and_publishes_the_asset(airflow: AirflowUnderTest, lake_day: LakeDay) -> None:
    # ``reconcile`` compares the day with the Flink windows of the same events (its own test runs the window jobs);
    # none ran over this test's topics, so it is marked successful here and the rest of the DAG runs for real
    day = lake_day.day.isoformat()
    log = airflow.work / "daily_analytics.log"
    result = dag_test("daily_analytics", day, airflow.env, log, mark_success="^reconcile$")
    assert result["state"] == "success", result
    assert {task: found["state"] for task, found in result["tasks"].items()} == {
        "spark_batch": "success",
        "reconcile": "success",
        "publish": "success",
    }
    assert result["assets"] == ["freightline_warehouse_day"]
    daily = f"SELECT sum(view_count) FROM analytics.product_views_daily WHERE report_date = '{day}'"
    [(views,)] = rows(lake_day.dsn, daily)
    [(raw_views,)] = rows(lake_day.dsn, f"SELECT count(*) FROM raw.product_views WHERE ds = '{day}'")
    assert views == raw_views > 0


def test_a_failing_task_is_retried_then_alerts(airflow: AirflowUnderTest, stack_env: dict[str, str]) -> None:
    # the run's id (``manual__<when it was created>``) labels this test's alert among the shared Alertmanager's
    result = dag_test("always_fails", "2026-11-03", airflow.env, airflow.work / "always_fails.log", FAILING_DAGS)
    assert result["state"] == "failed", result
    assert result["tasks"] == {"fail": {"state": "failed", "try_number": 2}}  # the retry ran, then it gave up
    filters = [f'run_id="{result["run_id"]}"', 'dag_id="always_fails"', 'alertname="AirflowTaskFailed"']
    alerts = httpx.get(f"{stack_env['ALERTMANAGER_URL']}/api/v2/alerts", params={"filter": filters}).json()
    assert [alert["labels"]["task_id"] for alert in alerts] == ["fail"]
    assert "after 2 tries" in alerts[0]["annotations"]["summary"]
