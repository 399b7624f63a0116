"""The main job's batch stages without Airflow: the tasks of ``daily_analytics`` and ``dbt_build`` run directly, in
the DAGs' order, against the run's stack (its ``POSTGRES_DSN``, lake and brokers), for a stack without Airflow (the
secure engine test, ``tests/integration/secure_engines``).

- ``daily batch (tasks)``: per day of the run, ``spark_batch``'s job (``freightline spark batch --ds <day>``: the
  Spark application of ``batch_spark.daily_batch``); its figures and the reconciliation with the windows (the
  ``reconcile`` task's check) read back as the Airflow stage reads them (``deploy/batch_stage.py``);
- ``dbt (tasks)``: ``load_reference``'s job (``freightline spark load-reference``), one ``dbt build`` (what Cosmos'
  watcher runs) and ``dbt source freshness``, with the profile ``freightline dbt`` derives from ``POSTGRES_DSN`` (TLS
  included); their results read back from ``audit.dbt_results`` (``deploy/dbt_stage.py``) under the run's label.

What Airflow adds (scheduling, retries, the Asset event between the DAGs, its metadata database) is not exercised.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from deploy import batch_stage, dbt_stage
from deploy.batch_stage import BatchFigures, days_of
from deploy.dbt import run_dbt
from deploy.spark import run_job

if TYPE_CHECKING:
    from deploy.pipeline import RunContext, Stage

# The label ``dbt/macros/record_results.sql`` files a dbt command's results under: Airflow sets it for its tasks
# (the DAG run's id); here each command of the stage gets the run's own.
RUN_LABEL_VARIABLE = "AIRFLOW_CTX_DAG_RUN_ID"
DBT_COMMANDS = (["build"], ["source", "freshness"])


def stage_daily_tasks(ctx: RunContext) -> None:
    """Each of the run's days through ``daily_analytics``' Spark job, then the batch figures."""
    figures = BatchFigures(days=days_of(ctx))
    ctx.figures.batch = figures
    for day in figures.days:
        started = time.monotonic()
        run_job("batch", ctx.stack.ctx.paths, ctx.env, ctx.log(f"spark-batch-{day}"), ds=day)
        figures.elapsed_s += time.monotonic() - started
    batch_stage.read_figures(ctx, figures)
    batch_stage.report(ctx, figures)


def stage_dbt_tasks(ctx: RunContext) -> None:
    """``dbt_build``'s tasks: the reference load, ``dbt build``, ``dbt source freshness``; then the dbt figures."""
    paths = ctx.stack.ctx.paths
    run_job("load-reference", paths, ctx.env, ctx.log("spark-load-reference"))
    label = f"freightline__tasks__{ctx.run_id}"
    env = {**ctx.env, RUN_LABEL_VARIABLE: label}
    for args in DBT_COMMANDS:
        result = run_dbt(args, env, target_path=paths.data / "dbt-target", log=ctx.log("dbt"))
        if result.returncode != 0:
            ctx.report.problems.append(f"dbt {' '.join(args)} exited {result.returncode}; see {ctx.log('dbt')}")
    ctx.figures.dbt = figures = dbt_stage.read_figures(ctx.env, label)
    dbt_stage.report(ctx, figures)


BATCH_TASK_STAGES: list[tuple[str, Stage]] = [
    ("daily batch (tasks)", stage_daily_tasks),
    ("dbt (tasks)", stage_dbt_tasks),
]
"""The batch stages without Airflow, to run after the main job's stages up to the sinks (``execute(..., then=)``)."""
