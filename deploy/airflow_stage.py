"""The main job's Airflow stage: the run's day through the stack's Airflow (``AIRFLOW_API_URL``).

1. ``daily_analytics`` (and ``dbt_build``, when deployed) unpaused, then a run of ``daily_analytics`` for the run's
   day (the UTC day its events begin) triggered through the REST API, or, when the day already has a run (an earlier
   job, the schedule), that run cleared so that every task runs again (each replaces its day: idempotent);
2. the stage follows it, printing each task's state as it changes, until it succeeds or fails;
3. when ``dbt_build`` is deployed, the run the published Asset starts is followed the same way;
4. the report lists each task's state, tries and duration, and the runs' durations.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

from deploy.airflow_api import AirflowApi, AirflowApiError, TaskState
from deploy.batch_stage import run_days

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

console = Console(stderr=True)

SECTION = "Airflow (batch)"
DAILY_DAG = "daily_analytics"
DBT_DAG = "dbt_build"
RUN_TIMEOUT_S = 3600  # hang guards: a day of the local stack runs in minutes
DBT_START_TIMEOUT_S = 300


def run_day(ctx: RunContext) -> dt.date:
    """The UTC day the run's events begin (the generator's start), else today."""
    now = dt.datetime.now(dt.UTC)
    return run_days(ctx.start, now)[0] if ctx.start else now.date()


class _Progress:
    """Prints a line whenever a task's state changes."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.seen: dict[str, str | None] = {}
        self.started = time.monotonic()

    def __call__(self, run: dict[str, Any], tasks: list[TaskState]) -> None:
        for task in tasks:
            if self.seen.get(task.task_id, "") != task.state:
                self.seen[task.task_id] = task.state
                elapsed = time.monotonic() - self.started
                console.print(
                    f"[dim]{time.strftime('%H:%M:%S')}[/dim]   {self.dag_id}.{task.task_id}: "
                    f"{task.state or 'waiting'} (try {task.try_number}, run {run['state']}, {elapsed:.0f} s)"
                )


def _report(ctx: RunContext, dag_id: str, run: dict[str, Any], tasks: list[TaskState], elapsed: float) -> None:
    ctx.report.add(SECTION, f"{dag_id} run", f"{run['dag_run_id']}: {run['state']} in {elapsed:.0f} s")
    for task in tasks:
        duration = f"{task.duration_s:.1f} s" if task.duration_s is not None else "-"
        ctx.report.add(SECTION, f"{dag_id}.{task.task_id}", f"{task.state} (try {task.try_number}, {duration})")
    if run["state"] != "success":
        failed = [task.task_id for task in tasks if task.state != "success"]
        raise RuntimeError(f"{dag_id} run {run['dag_run_id']} {run['state']}: tasks not successful: {failed}")


def _follow(ctx: RunContext, api: AirflowApi, dag_id: str, run_id: str) -> dict[str, Any]:
    started = time.monotonic()
    run = api.wait(dag_id, run_id, RUN_TIMEOUT_S, progress=_Progress(dag_id))
    _report(ctx, dag_id, run, api.tasks(dag_id, run_id), time.monotonic() - started)
    return run


def _deployed(api: AirflowApi, dag_id: str) -> bool:
    try:
        api.dag(dag_id)
    except AirflowApiError:
        return False
    return True


def _asset_run(api: AirflowApi, after: str) -> str:
    """The ``dbt_build`` run the Asset event of the daily run started (queued after it ended)."""
    deadline = time.monotonic() + DBT_START_TIMEOUT_S
    while True:
        runs = [run for run in api.runs(DBT_DAG, limit=5) if (run.get("queued_at") or "") >= after]
        if runs:
            return str(runs[0]["dag_run_id"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {DBT_DAG} run started within {DBT_START_TIMEOUT_S} s of the Asset event")
        time.sleep(2)


def stage_airflow(ctx: RunContext) -> None:
    """The run's day through Airflow: ``daily_analytics``, then the ``dbt_build`` it triggers."""
    day = run_day(ctx)
    api = AirflowApi.from_env(ctx.env)
    try:
        api.wait_for_dag(DAILY_DAG, timeout=300)
        with_dbt = _deployed(api, DBT_DAG)
        for dag_id in (DAILY_DAG, DBT_DAG) if with_dbt else (DAILY_DAG,):
            api.set_paused(dag_id, False)
        logical_date = dt.datetime.combine(day, dt.time(), dt.UTC)
        run_id = api.trigger_or_clear(DAILY_DAG, logical_date, f"freightline__{day}__{ctx.run_id}")
        console.print(f"  {DAILY_DAG} for {day}: run {run_id} ({ctx.env['AIRFLOW_API_URL']})")
        daily = _follow(ctx, api, DAILY_DAG, run_id)
        if with_dbt:
            _follow(ctx, api, DBT_DAG, _asset_run(api, daily["end_date"]))
        else:
            ctx.report.add(SECTION, DBT_DAG, "not deployed in dags/")
    finally:
        api.close()
