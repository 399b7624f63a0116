"""Runs the Spark batch jobs (``batch_spark``) in their own environment, as processes: the jars setup resolved as
``SPARK_JOBS_JARS``, the repository on ``PYTHONPATH``, the stack's endpoints in the environment; and the
``freightline spark load-raw|daily`` commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from deploy.local.context import REPO_ROOT, StackContext, StackPaths
from deploy.local.jars import jar_dir
from deploy.local.settings import StackSettings
from services.common.settings import LOCAL_HOST

SPARK_PYTHON = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "spark" / ".venv" / "bin" / "python"
JOBS = {
    "load-raw": "batch_spark.load_raw",
    "daily": "batch_spark.daily_aggregates",
    "batch": "batch_spark.daily_batch",  # both, in one Spark application
    "load-reference": "batch_spark.load_reference",  # the whole reference topics, no day
}


class SparkJobError(RuntimeError):
    pass


def _cause(lines: list[str]) -> str:
    """The last exception line of a job's log (Python or Java), else its last line; with the last ``Caused by:``
    after it, the root of a Java exception Py4J passed on (a refused certificate, say, under the connector's own)."""
    stripped = [line.strip() for line in lines]
    found = [i for i, line in enumerate(stripped) if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    if not found:
        return ([line for line in stripped if line] or [""])[-1]
    causes = [line.removeprefix("Caused by: ") for line in stripped[found[-1] :] if line.startswith("Caused by: ")]
    return f"{stripped[found[-1]]} (caused by {causes[-1]})" if causes else stripped[found[-1]]


def job_environment(paths: StackPaths, env: Mapping[str, str]) -> dict[str, str]:
    jars = sorted(str(path) for path in jar_dir(paths, "spark").glob("*.jar"))
    if not jars or not SPARK_PYTHON.exists():
        raise SparkJobError("the Spark environment or its jars are missing: run `make setup` first")
    result = {**os.environ, **env}
    result.setdefault("SPARK_JOBS_JARS", ",".join(jars))
    result.setdefault("SPARK_LOCAL_IP", result.get("SPARK_JOBS_DRIVER_HOST", LOCAL_HOST))
    result["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), result.get("PYTHONPATH")]))
    result["PYTHONUNBUFFERED"] = "1"
    return result


def run_job(
    job: str,
    paths: StackPaths,
    env: Mapping[str, str],
    log: Path,
    *,
    ds: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, Any]:
    """Run one job (``load-raw``, ``daily`` or ``batch``: both) for a day or a range, or ``load-reference`` (no
    day); returns its JSON run report."""
    days = []
    if ds is not None:
        days = ["--ds", str(ds)]
    elif start is not None and end is not None:
        days = ["--start", str(start), "--end", str(end)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as errors:
        result = subprocess.run(
            [str(SPARK_PYTHON), "-m", JOBS[job], *days],
            env=job_environment(paths, env),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            check=False,
        )
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    if result.returncode != 0 or not lines:
        last = _cause(log.read_text(errors="replace").splitlines()[-400:])
        raise SparkJobError(f"spark job {job} exited {result.returncode}: {last.strip()[:500]} (log: {log})")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


# -- the ``freightline spark`` commands -----------------------------------------------------------------------------
spark_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Run the Spark batch jobs (batch_spark).")

Day = Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The day (UTC event date).")]
Start = Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day of a backfill.")]
End = Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day of a backfill (inclusive).")]


def _command(job: str, ds: dt.datetime | None, start: dt.datetime | None, end: dt.datetime | None) -> None:
    if job != "load-reference" and ds is None and (start is None or end is None):
        raise typer.BadParameter("give --ds D, or --start D --end D")
    paths, env = stack_environment()
    try:
        report = run_job(
            job,
            paths,
            env,
            paths.log(f"spark-{job}"),
            ds=ds.date() if ds else None,
            start=start.date() if start else None,
            end=end.date() if end else None,
        )
    except SparkJobError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(json.dumps(report, indent=2, sort_keys=True))


@spark_app.command("load-raw")
def load_raw(ds: Day = None, start: Start = None, end: End = None) -> None:
    """The day's raw events from the lake (HDFS) into PostgreSQL raw.<family> (idempotent per day)."""
    _command("load-raw", ds, start, end)


@spark_app.command("daily")
def daily(ds: Day = None, start: Start = None, end: End = None) -> None:
    """The day's analytics tables into PostgreSQL analytics.* and Parquet (idempotent per day)."""
    _command("daily", ds, start, end)


@spark_app.command("batch")
def batch(ds: Day = None, start: Start = None, end: End = None) -> None:
    """load-raw then daily for each day, in one Spark application."""
    _command("batch", ds, start, end)


@spark_app.command("load-reference")
def load_reference() -> None:
    """The reference topics (reference.*.v1: latest value per key) into PostgreSQL raw.reference_<entity>."""
    _command("load-reference", None, None, None)


def stack_environment() -> tuple[StackPaths, dict[str, str]]:
    """The local stack's paths and endpoints (``stack.env``), with the process environment winning over them."""
    paths = StackContext.create(StackSettings()).paths
    env = read_env(paths.env_file) if paths.env_file.exists() else {}
    env.update(os.environ)
    return paths, env


def read_env(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a stack's ``stack.env``."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}
