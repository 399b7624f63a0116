"""The Flink session cluster of the local stack (started with it), and running a job on it for one test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from stream_processors.flink_sql import WindowJob
from tests.integration.flink.support import JobRun


@pytest.fixture(scope="session")
def flink_rest_url(stack_env: dict[str, str]) -> str:
    if "FLINK_REST_URL" not in stack_env:
        pytest.fail("the local stack exported no FLINK_REST_URL (its Flink cluster is not running)")
    return stack_env["FLINK_REST_URL"]


class Jobs:
    """Jobs a test runs on the cluster; whatever is still running at the end is cancelled (jobs run serially)."""

    def __init__(self, ctx: StackContext, stack_env: dict[str, str], rest_url: str) -> None:
        self.ctx, self.env, self.rest_url = ctx, stack_env, rest_url
        self.submitted: list[str] = []

    def submit(self, name: str, settings: dict[str, str], from_savepoint: str | None = None) -> str:
        job_id = flink_jobs.submit(
            self.ctx, name, self.rest_url, {**self.env, **settings}, from_savepoint=from_savepoint
        )
        return self.track(job_id)

    def track(self, job_id: str) -> str:
        self.submitted.append(job_id)
        return job_id

    def cancel_running(self) -> None:
        for job_id in self.submitted:
            if flink_jobs.job_details(self.rest_url, job_id)["state"] in {"RUNNING", "CREATED", "RESTARTING"}:
                flink_jobs.cancel(self.rest_url, job_id)


@pytest.fixture
def jobs(stack_env: dict[str, str], flink_rest_url: str) -> Iterator[Jobs]:
    running = Jobs(StackContext.create(StackSettings()), stack_env, flink_rest_url)
    yield running
    running.cancel_running()


JobRunFactory = Callable[[WindowJob, str, dt.timedelta], JobRun]


@pytest.fixture
def job_run(
    stack_env: dict[str, str], flink_rest_url: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> JobRunFactory:
    """A job's run of its own (topics, table, settings): ``job_run(JOB, settings prefix, out-of-orderness bound)``."""
    return lambda job, prefix, bound: JobRun(job, prefix, stack_env, flink_rest_url, new_topic, unique_name, bound)
