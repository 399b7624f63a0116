"""Exactly once through a TaskManager crash: SIGKILL the TaskManager of a private Flink cluster while the
product-views job runs with windows still open and a transaction in flight, start a new TaskManager, let the job
restart from its last checkpoint, and compare the committed Kafka output and the PostgreSQL table with the oracle:
no window missing, none doubled."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deploy import flink_jobs
from deploy.local.flink import FlinkJobManager, FlinkTaskManager
from stream_processors.oracle import product_views_windows
from stream_processors.product_views import JOB
from tests.integration.crash import kill_in_flight
from tests.integration.flink.support import JobRun
from tests.integration.flink.test_product_views import BOUND, last_end, views
from tests.integration.sinks.helpers import PrivateTarget, free_port, wait_for

pytestmark = pytest.mark.integration


class PrivateFlink:
    """A JobManager and a TaskManager of their own (own ports and state), from the stack's built runtimes."""

    def __init__(self, home: Path) -> None:
        ports = {
            "flink_port": free_port(),
            "flink_rpc_port": free_port(),
            "flink_jobmanager_metrics_port": free_port(),
            "flink_taskmanager_metrics_port": free_port(),
        }
        self.jobmanager = PrivateTarget(FlinkJobManager(), home, **ports)
        self.home, self.ports = home, ports
        self.taskmanager = self.new_taskmanager()

    def new_taskmanager(self) -> PrivateTarget:
        return PrivateTarget(FlinkTaskManager(), self.home, **self.ports)

    @property
    def rest_url(self) -> str:
        return self.jobmanager.exports()["FLINK_REST_URL"]

    def kill_taskmanager(self) -> None:
        process = self.taskmanager.process
        assert process is not None and process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


@pytest.fixture
def private_flink(tmp_path: Path) -> Iterator[PrivateFlink]:
    cluster = PrivateFlink(tmp_path / "flink")
    try:
        cluster.jobmanager.start()
        cluster.taskmanager.start()
        yield cluster
    finally:
        cluster.taskmanager.stop()
        cluster.jobmanager.stop()


def test_taskmanager_sigkill_restarts_from_checkpoint_exactly_once(
    stack_env: dict[str, str],
    private_flink: PrivateFlink,
    new_topic: Callable[..., str],
    unique_name: Callable[[str], str],
) -> None:
    run = JobRun(JOB, "PRODUCT_VIEWS_JOB_", stack_env, private_flink.rest_url, new_topic, unique_name, BOUND)
    run.settings["PRODUCT_VIEWS_JOB_CHECKPOINT_INTERVAL_MS"] = "20000"  # a checkpoint rarely falls on the kill
    events = views(seed=15)
    first, second = len(events) // 3, 2 * len(events) // 3
    expected = product_views_windows(events, BOUND)
    run.produce(events[:first])
    job_id = flink_jobs.submit(
        private_flink.jobmanager.ctx, "product_views", private_flink.rest_url, {**stack_env, **run.settings}
    )
    run.wait_for_window_end(
        max(window["window_end"] for window in product_views_windows(events[:first], BOUND).values())
    )
    wait_for(lambda: _checkpoints(private_flink.rest_url, job_id)["completed"] >= 1, 120, what="a checkpoint")

    run.produce(events[first:second])
    client = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    lag = kill_in_flight(private_flink.kill_taskmanager, client, run.group, [run.source])
    assert lag > 0, "the kill found every input committed: it hit no work in flight"

    run.produce(events[second:])  # arrives while the job has no TaskManager
    private_flink.taskmanager = private_flink.new_taskmanager()
    private_flink.taskmanager.start()
    run.wait_for_window_end(last_end(expected))
    assert _checkpoints(private_flink.rest_url, job_id)["restored"] >= 1, "the job did not restart from a checkpoint"
    flink_jobs.savepoint(private_flink.rest_url, job_id, stop=True)
    run.check(expected)


def _checkpoints(rest_url: str, job_id: str) -> dict[str, int]:
    return dict(httpx.get(f"{rest_url}/jobs/{job_id}/checkpoints", timeout=10).json()["counts"])
