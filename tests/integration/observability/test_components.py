"""Prometheus and Alertmanager as stack components, started alone on free ports and stopped again."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import psutil
import pytest

from deploy.local.context import StackContext
from deploy.local.observability_components import observability_components
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.metrics_targets import TARGETS
from tests.integration.processes import wait_for

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_monitoring_starts_with_the_rules_and_routes_and_stops_without_leftovers(tmp_path: Path) -> None:
    settings = StackSettings(
        home=str(tmp_path / "home"),
        prometheus_port=_free_port(),
        alertmanager_port=_free_port(),
        alert_webhook_url=f"http://127.0.0.1:{_free_port()}/alerts",
        stop_timeout_s=20,
    )
    ctx = StackContext.create(settings)
    ctx.paths.ensure()
    ctx.paths.jars.rmdir()  # the stack's set-up resolves the Java runtimes: reuse the main state directory's
    ctx.paths.jars.symlink_to(StackContext.create(StackSettings()).paths.jars)
    stack = Stack(ctx, observability_components())
    env = stack.up()
    try:
        pids = stack.pids()
        assert len(pids) == 3  # supervisord, Prometheus, Alertmanager
        assert {"PROMETHEUS_URL", "ALERTMANAGER_URL", "ALERTMANAGER_WEBHOOK_URL", "METRICS_TARGETS_DIR"} <= set(env)

        config = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
        assert all(f"job_name: {t.name}" in config for t in TARGETS)
        groups = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/rules", timeout=10).json()["data"]["groups"]
        alerts = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
        assert "FreightlineDeadLetters" in alerts and "FreightlineLatencySLOFastBurn" in alerts
        assert all(rule["health"] != "err" for group in groups for rule in group["rules"])

        def managers() -> list[str]:
            data = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/alertmanagers", timeout=10).json()["data"]
            return [m["url"] for m in data["activeAlertmanagers"]]

        wait_for(lambda: managers() == [f"{env['ALERTMANAGER_URL']}/api/v2/alerts"], 60, what="the alertmanager")

        status = httpx.get(f"{env['ALERTMANAGER_URL']}/api/v2/status", timeout=10).json()
        assert env["ALERTMANAGER_WEBHOOK_URL"] in status["config"]["original"]
        assert status["cluster"]["status"] == "disabled"
    finally:
        children = [c.pid for pid in stack.pids() for c in psutil.Process(pid).children(recursive=True)]
        stack.down()
    for pid in [*pids, *children]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for port in (settings.prometheus_port, settings.alertmanager_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
