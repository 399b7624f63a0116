"""A Spark job started with a bad setting exits non-zero with one clear line naming it, before starting Spark."""

from __future__ import annotations

import subprocess

import pytest

from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.settings import StackSettings
from deploy.spark import JOBS, SPARK_PYTHON, job_environment

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("module", sorted(JOBS.values()))
@pytest.mark.parametrize(
    ("variable", "value"), [("SPARK_JOBS_JARS", ""), ("SPARK_JOBS_SHUFFLE_PARTITIONS", "none")], ids=["jars", "shuffle"]
)
def test_a_bad_setting_is_named_in_one_line(stack_env: dict[str, str], module: str, variable: str, value: str) -> None:
    env = job_environment(StackContext.create(StackSettings()).paths, {**stack_env, variable: value})
    result = subprocess.run(
        [str(SPARK_PYTHON), "-m", module, "--ds", "2026-11-02"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a timed assertion
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and variable in lines[0], result.stderr
