"""The Flink session cluster of the local stack (started with it), and running a job on it for one test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings


@pytest.fixture(scope="session")
def flink_rest_url(stack_env: dict[str, str]) -> str:
    if "FLINK_REST_URL" not in stack_env:
        pytest.fail("the local stack exported no FLINK_REST_URL (its Flink cluster is not running)")
    return stack_env["FLINK_REST_URL"]


@pytest.fixture
def submit_job(stack_env: dict[str, str], flink_rest_url: str) -> Iterator[Callable[..., str]]:
    """Submit a job with extra settings; every job the test submitted is cancelled at the end (jobs run serially)."""
    ctx = StackContext.create(StackSettings())
    submitted: list[str] = []

    def submit(name: str, settings: dict[str, str], from_savepoint: str | None = None) -> str:
        job_id = flink_jobs.submit(ctx, name, flink_rest_url, {**stack_env, **settings}, from_savepoint=from_savepoint)
        submitted.append(job_id)
        return job_id

    yield submit
    for job_id in submitted:
        if flink_jobs.job_details(flink_rest_url, job_id)["state"] in {"RUNNING", "CREATED", "RESTARTING"}:
            flink_jobs.cancel(flink_rest_url, job_id)
