"""The DAG folder parses cleanly with no metadata database reachable (no work at import time), and every DAG
carries what the project requires: an owner, retries with exponential back-off, timeouts, the failure alert,
tags, documentation and a bound on concurrent runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy.dbt import DBT_PROJECT
from deploy.local.airflow import dbt_manifest
from tests.integration.airflow.conftest import AirflowUnderTest
from tests.integration.airflow.support import DAGS, run_script

pytestmark = pytest.mark.integration

EXPECTED = {
    "lake_to_warehouse": {"load_raw": []},
    "daily_analytics": {"spark_batch": [], "reconcile": ["spark_batch"], "publish": ["reconcile"]},
    "data_quality": {"raw_day_loaded": [], "rejected_share": ["raw_day_loaded"]},
}


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory, airflow: AirflowUnderTest) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("dagbag")
    env = {
        "AIRFLOW_HOME": str(work),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the manifest dbt parse wrote when the session's Airflow started (dbt_build renders its tasks from it)
        "FREIGHTLINE_DBT_MANIFEST": str(dbt_manifest(airflow.ctx)),
        # nothing listens there: a DAG file touching the database at import time fails to import
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody@127.0.0.1:9/none",
    }
    return run_script("inspect_dags.py", [str(DAGS)], env, work / "dagbag.log", timeout=300)


def test_every_dag_file_imports(inspected: dict[str, Any]) -> None:
    assert inspected["import_errors"] == {}
    assert set(inspected["dags"]) == {*EXPECTED, "dbt_build"}
    for dag in inspected["dags"].values():
        assert Path(dag["file"]).parent == DAGS


def test_tasks_and_their_order(inspected: dict[str, Any]) -> None:
    for dag_id, tasks in EXPECTED.items():
        found = inspected["dags"][dag_id]["tasks"]
        assert {task_id: found[task_id]["upstream"] for task_id in found} == tasks, dag_id


def test_dbt_build_runs_each_model_then_its_tests_between_the_reference_load_and_freshness(
    inspected: dict[str, Any],
) -> None:
    tasks = {task_id: task["upstream"] for task_id, task in inspected["dags"]["dbt_build"]["tasks"].items()}
    models = sorted(path.stem for path in (DBT_PROJECT / "models").rglob("*.sql"))
    assert sorted(t.split(".")[1] for t in tasks if t.endswith(".run")) == models
    for model in models:  # the model's tests after the model
        assert tasks[f"dbt.{model}.test"] == [f"dbt.{model}.run"], model
    assert tasks["load_reference"] == []
    assert tasks["dbt.dbt_producer_watcher"] == ["load_reference"]  # the one dbt build
    # each model after its upstream models' tests (the first ones after the reference load)
    assert tasks["dbt.stg_orders.run"] == ["load_reference"]
    assert "dbt.stg_orders.test" in tasks["dbt.fct_orders.run"]
    # freshness once every model's tests are done
    group = {task: up for task, up in tasks.items() if task.startswith("dbt.")}
    leaves = {task for task in group if not any(task in up for up in group.values())}
    assert set(tasks["source_freshness"]) == leaves and leaves


def test_every_dag_is_documented_tagged_and_bounded(inspected: dict[str, Any]) -> None:
    for dag_id, dag in inspected["dags"].items():
        assert dag["doc_md"], dag_id
        assert "freightline" in dag["tags"], dag_id
        assert dag["max_active_runs"] == 1, dag_id
        assert dag["dagrun_timeout_s"], dag_id


def test_every_task_has_an_owner_retries_with_back_off_a_timeout_and_the_alert(inspected: dict[str, Any]) -> None:
    for dag_id, dag in inspected["dags"].items():
        for task_id, task in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert task["owner"] == "freightline-data", where
            assert task["retries"] >= 2, where
            assert task["exponential_backoff"] > 1, where
            assert task["execution_timeout_s"], where
            assert task["failure_callbacks"] >= 1, where  # Cosmos adds its own to the dbt build's task


def test_schedules(inspected: dict[str, Any]) -> None:
    dags = inspected["dags"]
    assert (dags["lake_to_warehouse"]["schedule"], dags["lake_to_warehouse"]["catchup"]) == ("0 * * * *", False)
    assert (dags["daily_analytics"]["schedule"], dags["daily_analytics"]["catchup"]) == ("0 0 * * *", True)
    assert dags["daily_analytics"]["tasks"]["publish"]["outlets"] == ["freightline_warehouse_day"]
    assert dags["dbt_build"]["schedule_assets"] == ["freightline_warehouse_day"]
    assert dags["dbt_build"]["catchup"] is False
