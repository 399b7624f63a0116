"""The real components: a run triggered through the REST API is scheduled by the scheduler, run by the
LocalExecutor's task processes (which report to the API server's execution API) and read back through the API; a
backfill of ``daily_analytics`` over the world's two days, created through the REST API (``airflow backfill create``)
and run by the scheduler twice (the session's ``backfills``), leaves the same warehouse."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from deploy.airflow_api import AirflowApi
from deploy.local.airflow import AirflowApiServer
from tests.integration.airflow.conftest import AirflowUnderTest, Backfill, LakeDay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_a_run_triggered_through_the_api_is_scheduled_and_succeeds(
    airflow: AirflowUnderTest, lake_day: LakeDay, loaded_day: dict[str, Any]
) -> None:
    assert loaded_day["state"] == "success", loaded_day
    api = AirflowApi.from_env(AirflowApiServer().exports(airflow.ctx))
    try:
        api.wait_for_dag("data_quality", timeout=300)  # parsed by the DAG processor
        api.set_paused("data_quality", False)
        day = dt.datetime.combine(lake_day.day, dt.time(), dt.UTC)
        run_id = api.trigger("data_quality", day)
        run = api.wait("data_quality", run_id, timeout=600, interval=2)
        assert run["state"] == "success", (run, api.tasks("data_quality", run_id))
        tasks = {task.task_id: (task.state, task.try_number) for task in api.tasks("data_quality", run_id)}
        assert tasks == {"raw_day_loaded": ("success", 1), "rejected_share": ("success", 1)}
        assert run["logical_date"].startswith(lake_day.day.isoformat())

        # the main job's way to run a day again: the day's run is cleared and every task runs a second time
        assert api.trigger_or_clear("data_quality", day, "data_quality_again") == run_id
        rerun = api.wait("data_quality", run_id, timeout=600, interval=2)
        assert rerun["state"] == "success", (rerun, api.tasks("data_quality", run_id))
        tasks = {task.task_id: (task.state, task.try_number) for task in api.tasks("data_quality", run_id)}
        assert tasks == {"raw_day_loaded": ("success", 2), "rejected_share": ("success", 2)}
    finally:
        api.close()


def test_a_backfill_over_two_days_run_twice_leaves_the_same_warehouse(
    backfills: list[Backfill], lake_day: LakeDay
) -> None:
    first, second = backfills
    days = [str(day) for day in lake_day.days]
    for backfill in backfills:
        assert sorted(backfill.runs) == days
        for day, run in backfill.runs.items():
            assert run["state"] == "success", (day, run)
            assert {task: state for task, (state, _) in run["tasks"].items()} == dict.fromkeys(
                ("spark_batch", "reconcile", "publish"), "success"
            ), (day, run)
    # the second backfill ran every task of every day again (the same runs, cleared) ...
    assert {day: run["run_id"] for day, run in first.runs.items()} == {d: r["run_id"] for d, r in second.runs.items()}
    for day, run in first.runs.items():
        again = {task: tries + 1 for task, (_, tries) in run["tasks"].items()}
        assert {task: tries for task, (_, tries) in second.runs[day]["tasks"].items()} == again, day
    # ... and left the same warehouse, row for row, with both days loaded
    assert first.warehouse == second.warehouse
    with psycopg.connect(lake_day.dsn) as conn:
        loaded = conn.execute(b"SELECT ds, sum(loaded) FROM raw.load_audit GROUP BY ds ORDER BY ds").fetchall()
    assert [day for day, _ in loaded] == list(lake_day.days) and all(count > 0 for _, count in loaded), loaded
