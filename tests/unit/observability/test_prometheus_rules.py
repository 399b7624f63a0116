"""The rules of observability/prometheus and the Alertmanager routes, checked by Prometheus's own tools.

``promtool check rules`` parses every rule file; ``promtool test rules`` runs the unit tests of
``observability/prometheus/tests``; a coverage check makes sure every alert has a case where it fires and one
where it stays quiet; ``amtool check-config`` parses the routes as the local stack renders them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.flink_jobs import JOBS, job_settings
from deploy.local.context import StackContext
from deploy.local.observability_components import ALERTMANAGER_TEMPLATE, Alertmanager
from deploy.local.settings import StackSettings
from stream_processors.flink_sql import pipeline_name

PROMETHEUS = Path(__file__).resolve().parents[3] / "observability" / "prometheus"
RULE_FILES = sorted(PROMETHEUS.glob("*.rules.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.test.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make setup`")
    return path


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def _alerts() -> set[str]:
    names: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["alert"] for rule in group["rules"] if "alert" in rule)
    return names


def _alert_cases() -> list[dict[str, Any]]:
    cases = []
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_rule_files_parse() -> None:
    assert RULE_FILES, f"no rule files in {PROMETHEUS}"
    result = _run(_tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    assert TEST_FILES, f"no promtool tests in {PROMETHEUS / 'tests'}"
    result = _run(_tool("promtool"), "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = _alerts()
    assert alerts
    cases = _alert_cases()
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_rendered_alertmanager_config_is_valid_and_posts_to_the_stack_webhook(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1/hook"
    ctx = StackContext.create(StackSettings(home=str(tmp_path), alert_webhook_url=url))
    config = Alertmanager().config(ctx)
    webhooks = [hook for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert webhooks and all(hook["url"] == url for hook in webhooks)
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(yaml.safe_dump(config))
    for path in (ALERTMANAGER_TEMPLATE, rendered):
        result = _run(_tool("amtool"), "check-config", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_severity_the_alerts_use_has_a_route() -> None:
    config = yaml.safe_load(ALERTMANAGER_TEMPLATE.read_text())
    routed = {matcher for route in config["route"]["routes"] for matcher in route["matchers"]}
    severities: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            severities.update(rule["labels"]["severity"] for rule in group["rules"] if "alert" in rule)
    assert {f'severity="{s}"' for s in severities} <= routed


def _flink_label_value(name: str) -> str:
    """A label value as Flink's Prometheus reporter writes it: every character outside [a-zA-Z0-9:_] as "_"."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", name)


def test_the_expected_flink_jobs_are_the_jobs_the_deployment_runs() -> None:
    rules = yaml.safe_load((PROMETHEUS / "flink_jobs.rules.yml").read_text())["groups"][0]["rules"]
    expected = {rule["labels"]["job_name"] for rule in rules if rule["record"] == "freightline:flink_job_expected"}
    deployed = {_flink_label_value(spec.job.pipeline_name(job_settings(spec, {}))) for spec in JOBS.values()}
    # the five as one Flink job: how compose and Kubernetes run them (deploy/manifests)
    together = pipeline_name([(spec.job, job_settings(spec, {})) for spec in JOBS.values()])
    assert expected == {*deployed, _flink_label_value(together)}
