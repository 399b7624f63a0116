"""The DAGs against the shared stack's PostgreSQL and lake on a generated world: ``lake_to_warehouse`` and
``dbt_build`` in-process with ``dag.test()`` (the run's state is checked: ``dag.test()`` returns normally when a run
fails), ``daily_analytics`` through the session's scheduler (its backfill, ``conftest.backfills``: the same DAG run
for real, by the real components), and a failing task retried, then alerting through the stack's Alertmanager."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deploy.dbt import DBT_PROJECT
from deploy.dbt_stage import read_figures
from tests.integration.airflow.conftest import AirflowUnderTest, Backfill, LakeDay
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


def test_daily_analytics_writes_each_day_and_publishes_the_asset(backfills: list[Backfill], lake_day: LakeDay) -> None:
    # run by the scheduler (the session's backfill), every task for real: the warehouse holds the Flink windows of the
    # same events, so the reconciliation holds
    for day, run in backfills[-1].runs.items():
        assert run["state"] == "success", (day, run)
        assert {task: state for task, (state, _) in run["tasks"].items()} == dict.fromkeys(
            ("spark_batch", "reconcile", "publish"), "success"
        ), (day, run)
        assert run["assets"] == ["freightline_warehouse_day"], (day, run)
        daily = f"SELECT sum(view_count) FROM analytics.product_views_daily WHERE report_date = '{day}'"
        [(views,)] = rows(lake_day.dsn, daily)
        [(raw_views,)] = rows(lake_day.dsn, f"SELECT count(*) FROM raw.product_views WHERE ds = '{day}'")
        assert views == raw_views > 0
        # the load's counts, committed with the day's rows: what the main job reports
        audit = dict(rows(lake_day.dsn, f"SELECT family, loaded FROM raw.load_audit WHERE ds = '{day}'"))
        assert audit["product_views"] == raw_views


def test_dbt_build_builds_every_model_then_checks_freshness(
    airflow: AirflowUnderTest, lake_day: LakeDay, backfills: list[Backfill]
) -> None:
    assert all(run["state"] == "success" for run in backfills[-1].runs.values()), backfills[-1].runs
    result = dag_test("dbt_build", lake_day.day.isoformat(), airflow.env, airflow.work / "dbt_build.log")
    assert result["state"] == "success", result
    states = {task: found["state"] for task, found in result["tasks"].items()}
    assert {task for task, state in states.items() if state != "success"} == set(), states
    models = sorted(path.stem for path in (DBT_PROJECT / "models").rglob("*.sql"))
    # the reference load first, one dbt build, a task per model and one for its tests, then the freshness check
    assert {"load_reference", "dbt.dbt_producer_watcher", "source_freshness"} <= set(states)
    assert sorted(t.split(".")[1] for t in states if t.endswith(".run")) == models
    assert sorted(t.split(".")[1] for t in states if t.endswith(".test")) == models

    # what the main job reads back: the run's dbt results in the warehouse
    figures = read_figures({"POSTGRES_DSN": lake_day.dsn}, result["run_id"])
    assert (figures.models_built, figures.failures) == (len(models), {})
    assert figures.build["snapshot:success"] == 4 and figures.tests_passed > 100
    assert figures.freshness and set(figures.freshness.values()) <= {"pass", "warn"}, figures.freshness
    assert all(count > 0 for count in figures.reference_rows.values()), figures.reference_rows
    assert figures.revenue_latest_day


def test_a_failing_task_is_retried_then_alerts(airflow: AirflowUnderTest, stack_env: dict[str, str]) -> None:
    # the run's id (``manual__<when it was created>``) labels this test's alert among the shared Alertmanager's
    result = dag_test("always_fails", "2026-11-03", airflow.env, airflow.work / "always_fails.log", FAILING_DAGS)
    assert result["state"] == "failed", result
    assert result["tasks"] == {"fail": {"state": "failed", "try_number": 2}}  # the retry ran, then it gave up
    filters = [f'run_id="{result["run_id"]}"', 'dag_id="always_fails"', 'alertname="AirflowTaskFailed"']
    alerts = httpx.get(f"{stack_env['ALERTMANAGER_URL']}/api/v2/alerts", params={"filter": filters}).json()
    assert [alert["labels"]["task_id"] for alert in alerts] == ["fail"]
    assert "after 2 tries" in alerts[0]["annotations"]["summary"]
