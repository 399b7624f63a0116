"""The real components: a run triggered through the REST API is scheduled by the scheduler, run by the
LocalExecutor's task processes (which report to the API server's execution API) and read back through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from deploy.airflow_api import AirflowApi
from deploy.local.airflow import AirflowApiServer
from tests.integration.airflow.conftest import AirflowUnderTest, LakeDay

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
