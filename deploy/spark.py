"""Runs the Spark batch jobs (``batch_spark``) in their own environment, as processes: the jars setup resolved as
``SPARK_JOBS_JARS``, the repository on ``PYTHONPATH``, the stack's endpoints in the environment."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploy.local.context import REPO_ROOT, StackPaths
from deploy.local.jars import jar_dir
from services.common.settings import LOCAL_HOST

SPARK_PYTHON = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "spark" / ".venv" / "bin" / "python"
JOBS = {"load-raw": "batch_spark.load_raw", "daily": "batch_spark.daily_aggregates"}


class SparkJobError(RuntimeError):
    pass


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
    """Run one job (``load-raw`` or ``daily``) for a day or a range; returns its JSON run report."""
    days = ["--ds", str(ds)] if ds is not None else ["--start", str(start), "--end", str(end)]
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
        raise SparkJobError(f"spark job {job} exited {result.returncode}; see {log}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report
