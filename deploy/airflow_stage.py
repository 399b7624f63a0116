"""The main job's batch stages, through the stack's Airflow (``AIRFLOW_API_URL``): one Spark run per day, then dbt.

1. ``daily batch (airflow)``: ``daily_analytics`` and ``dbt_build`` unpaused; for each of the run's days
   (``deploy.batch_stage.run_days``) a run of ``daily_analytics`` triggered through the REST API, or, when the day
   already has a run (an earlier job, the schedule), that run cleared so that every task runs again (each replaces
   its day: idempotent); the stage follows it, printing each task's state as it changes, until it succeeds or fails;
   then the batch figures are read back from the warehouse (``deploy/batch_stage.py``: ``raw.load_audit``, the
   tables, the top-10 queries, the reconciliation);
2. ``dbt (airflow)``: the ``dbt_build`` run that each day's published Asset started (found through the Asset events
   of the daily run), followed the same way; then the dbt figures of the last one are read back from the warehouse
   (``deploy/dbt_stage.py``: ``audit.dbt_results``, the marts).

The report lists each task's state, tries and duration, and each run's duration.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

from deploy import batch_stage, dbt_stage
from deploy.airflow_api import AirflowApi, TaskState
from deploy.batch_stage import BatchFigures, days_of

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

console = Console(stderr=True)

SECTION = "Airflow (batch)"
DAILY_DAG = "daily_analytics"
DBT_DAG = "dbt_build"
SPARK_TASK = "spark_batch"
RUN_TIMEOUT_S = 3600  # hang guards: a day of the local stack runs in minutes
DBT_START_TIMEOUT_S = 300


def run_day(ctx: RunContext) -> dt.date:
    """The UTC day the run's events begin (the generator's start), else today."""
    return days_of(ctx)[0]


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


def _follow(ctx: RunContext, api: AirflowApi, dag_id: str, run_id: str) -> list[TaskState]:
    """Wait for the run, then report it and each of its tasks; a run that did not succeed is a problem."""
    started = time.monotonic()
    run = api.wait(dag_id, run_id, RUN_TIMEOUT_S, progress=_Progress(dag_id))
    tasks = api.tasks(dag_id, run_id)
    ctx.report.add(SECTION, f"{dag_id} run", f"{run_id}: {run['state']} in {time.monotonic() - started:.0f} s")
    for task in tasks:
        duration = f"{task.duration_s:.1f} s" if task.duration_s is not None else "-"
        ctx.report.add(SECTION, f"{dag_id}.{task.task_id}", f"{task.state} (try {task.try_number}, {duration})")
    if run["state"] != "success":
        failed = [task.task_id for task in tasks if task.state != "success"]
        ctx.report.problems.append(f"{dag_id} run {run_id} {run['state']}: tasks not successful: {failed}")
    return tasks


def _api(ctx: RunContext) -> AirflowApi:
    api = AirflowApi.from_env(ctx.env)
    for dag_id in (DAILY_DAG, DBT_DAG):
        api.wait_for_dag(dag_id, timeout=300)  # parsed by the DAG processor
        api.set_paused(dag_id, False)
    return api


def stage_daily(ctx: RunContext) -> None:
    """Each of the run's days through ``daily_analytics`` (one Spark application per day), then its figures."""
    figures = BatchFigures(days=days_of(ctx))
    ctx.figures.batch = figures
    api = _api(ctx)
    try:
        for day in figures.days:
            logical_date = dt.datetime.combine(day, dt.time(), dt.UTC)
            run_id = api.trigger_or_clear(DAILY_DAG, logical_date, f"freightline__{day}__{ctx.run_id}")
            console.print(f"  {DAILY_DAG} for {day}: run {run_id} ({ctx.env['AIRFLOW_API_URL']})")
            figures.runs[day] = run_id
            tasks = _follow(ctx, api, DAILY_DAG, run_id)
            figures.elapsed_s += sum(t.duration_s or 0.0 for t in tasks if t.task_id == SPARK_TASK)
    finally:
        api.close()
    batch_stage.read_figures(ctx, figures)
    batch_stage.report(ctx, figures)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _triggered(api: AirflowApi, daily_run: str) -> str:
    """The ``dbt_build`` run the newest Asset event of ``daily_run`` started (the scheduler creates it shortly after
    the event; events of the same asset queued while a run is active start one run together)."""
    run = api.run(DAILY_DAG, daily_run)
    if run["state"] != "success":
        raise RuntimeError(f"{DAILY_DAG} run {daily_run} {run['state']}: no Asset event, no dbt run")
    since = _time(run["start_date"])  # a cleared run's earlier events started earlier dbt runs
    deadline = time.monotonic() + DBT_START_TIMEOUT_S
    while True:
        events = [e for e in api.asset_events(DAILY_DAG, daily_run) if _time(e["timestamp"]) >= since]
        runs = [run["run_id"] for run in (events[0]["created_dagruns"] if events else []) if run["dag_id"] == DBT_DAG]
        if runs:
            return str(runs[-1])
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {DBT_DAG} run started within {DBT_START_TIMEOUT_S} s of {daily_run}'s Asset event")
        time.sleep(2)


def stage_dbt(ctx: RunContext) -> None:
    """The ``dbt_build`` runs the daily runs' Asset events started, followed; the figures of the last one."""
    batch = ctx.figures.batch
    if batch is None or not batch.runs:
        raise RuntimeError("no daily_analytics run to follow")
    api = _api(ctx)
    try:
        followed: list[str] = []
        for daily_run in batch.runs.values():
            run_id = _triggered(api, daily_run)
            if run_id not in followed:
                console.print(f"  {DBT_DAG}: run {run_id}, started by {daily_run}'s Asset event")
                _follow(ctx, api, DBT_DAG, run_id)
                followed.append(run_id)
    finally:
        api.close()
    ctx.figures.dbt = figures = dbt_stage.read_figures(ctx.env, followed[-1])
    dbt_stage.report(ctx, figures)
