"""Test support of the Airflow component and the DAGs: Airflow's processes started alone (their own state
directory, supervisord, ports and metadata database on the shared stack's PostgreSQL), and scripts run in
Airflow's own environment (``dag.test()``, the DagBag)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from deploy.local.airflow import AIRFLOW_ENV, airflow_components, airflow_environment
from deploy.local.components import Postgres
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.supervision import Supervisor, render_config

AIRFLOW_PYTHON = AIRFLOW_ENV / ".venv" / "bin" / "python"
HERE = Path(__file__).resolve().parent
DAGS = REPO_ROOT / "dags"
FAILING_DAGS = HERE / "failing_dags"


def run_script(script: str, args: list[str], env: Mapping[str, str], log: Path, timeout: float) -> dict[str, Any]:
    """``script`` (in this folder) with Airflow's Python; its last output line, parsed as JSON."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as errors:
        result = subprocess.run(
            [str(AIRFLOW_PYTHON), str(HERE / script), *args],
            env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            check=False,
            timeout=timeout,  # a hang guard
        )
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    assert result.returncode == 0 and lines, f"{script} exited {result.returncode}; see {log}"
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def dag_test(
    dag_id: str, day: str, env: Mapping[str, str], log: Path, folder: Path = DAGS, mark_success: str = ""
) -> dict[str, Any]:
    """The DAG run for ``day`` through ``dag.test()``: its state, its tasks' states and tries, its Asset events;
    tasks matching the pattern ``mark_success`` are marked successful without running."""
    # dag.test() runs the DAG of the configured DAG folder (the serialized one): that folder is ``folder``
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    args = [str(folder), dag_id, day, *([mark_success] if mark_success else [])]
    return run_script("run_dag.py", args, env, log, timeout=1200)


@contextmanager
def running_airflow(ctx: StackContext, task_env: Mapping[str, str], timeout: float) -> Iterator[dict[str, str]]:
    """Airflow's API server, scheduler and DAG processor under ``ctx`` (the shared PostgreSQL at
    ``ctx.settings.postgres_port``), with ``task_env`` on top of their environment (what the tasks see); yields the
    environment of Airflow's processes, for ``dag.test()`` against the same metadata database."""
    Postgres().ensure_database(ctx, ctx.settings.airflow_database)
    ctx.paths.ensure()
    components = airflow_components()
    env = {**airflow_environment(ctx), **task_env}
    programs = []
    for component in components:
        component.prepare(ctx)
        program = component.program(ctx)
        program.environment = env
        programs.append((component, program))
    supervisor = Supervisor(ctx)
    supervisor.start_daemon(render_config(ctx, programs))
    try:
        deadline = time.monotonic() + timeout
        for wave in (components[:1], components[1:]):  # the API server migrates the database first
            for component in wave:
                supervisor.start(component.name)
            for component in wave:
                while not component.ready(ctx):
                    assert supervisor.info()[component.name]["statename"] == "RUNNING", ctx.paths.log(component.name)
                    assert time.monotonic() < deadline, f"{component.name} did not become healthy"
                    time.sleep(1)
        yield env
    finally:
        supervisor.shutdown()
        with psycopg.connect(Postgres().dsn(ctx, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{ctx.settings.airflow_database}" WITH (FORCE)'.encode())
