"""The stack's Flink session cluster: REST API up, a TaskManager registered with its slots, metrics exposed."""

from __future__ import annotations

import httpx
import pytest

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings

pytestmark = pytest.mark.integration


def test_cluster_answers_with_a_registered_taskmanager(flink_rest_url: str) -> None:
    overview = httpx.get(f"{flink_rest_url}/overview", timeout=10).json()
    assert overview["taskmanagers"] >= 1
    assert overview["slots-total"] >= StackSettings().flink_taskmanager_slots
    managers = httpx.get(f"{flink_rest_url}/taskmanagers", timeout=10).json()["taskmanagers"]
    assert managers and all(m["slotsNumber"] >= 1 for m in managers)


def test_cluster_reports_bounded_memory_and_checkpoint_directory(flink_rest_url: str) -> None:
    config = {
        item["key"]: item["value"] for item in httpx.get(f"{flink_rest_url}/jobmanager/config", timeout=10).json()
    }
    ctx = StackContext.create(StackSettings())
    assert config["jobmanager.memory.process.size"] == ctx.settings.flink_jobmanager_memory
    assert config["restart-strategy.type"] == "exponential-delay"
    assert config["execution.checkpointing.dir"].startswith("file:")


def test_jobmanager_prometheus_reporter_serves_cluster_metrics(flink_rest_url: str) -> None:
    config = {
        item["key"]: item["value"] for item in httpx.get(f"{flink_rest_url}/jobmanager/config", timeout=10).json()
    }
    host, port = config["metrics.reporter.prom.host"], config["metrics.reporter.prom.port"]
    metrics = httpx.get(f"http://{host}:{port}/metrics", timeout=10).text
    registered = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("flink_jobmanager_numRegisteredTaskManagers{")
    ]
    assert registered and registered[0] >= 1
