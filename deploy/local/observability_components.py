"""The stack's monitoring: Prometheus and Alertmanager (Debian's packages, run by the stack's supervisor).

- ``prometheus``: scrapes what ``deploy/metrics_targets.py`` lists (the Schema Registry and the Flink JobManager
  and TaskManager reporters at their stack addresses, every service through the target files the services keep
  in ``METRICS_TARGETS_DIR``), evaluates the rules of ``observability/prometheus/*.rules.yml`` (read in place:
  ``POST /-/reload`` picks up an edit) and sends alerts to the stack's Alertmanager. Data under
  ``data/prometheus``; the configuration is rendered into ``config/prometheus.yml`` on every start.
- ``alertmanager``: the routes and receivers of ``observability/alertmanager/alertmanager.yml``, each webhook
  pointed at ``FREIGHTLINE_ALERT_WEBHOOK_URL``; clustering off; data under ``data/alertmanager``.

Debian's system services of these packages are never used: the stack runs the binaries itself on its own ports.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Any

import yaml

from deploy.local.components import Component, Program
from deploy.local.context import REPO_ROOT, StackContext
from deploy.metrics_targets import TARGETS, scrape_configs
from services.common.settings import LOCAL_HOST

OBSERVABILITY = REPO_ROOT / "observability"
RULE_FILES = OBSERVABILITY / "prometheus" / "*.rules.yml"
ALERTMANAGER_TEMPLATE = OBSERVABILITY / "alertmanager" / "alertmanager.yml"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make setup` (it installs Debian's Prometheus packages)")
    return path


def metrics_targets_dir(ctx: StackContext) -> Path:
    """Where running services announce their ``/metrics`` addresses (``METRICS_TARGETS_DIR``)."""
    return ctx.paths.run / "metrics-targets"


class _PrometheusProjectServer(Component):
    """One binary of the Prometheus project: a YAML configuration rendered on start, a data directory under the
    state directory, HTTP on one loopback port, ready when ``/-/ready`` answers 200."""

    binary: str
    storage_flag: str

    @abstractmethod
    def port(self, ctx: StackContext) -> int: ...

    @abstractmethod
    def config(self, ctx: StackContext) -> dict[str, Any]: ...

    def flags(self, ctx: StackContext) -> list[str]:
        return []

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": self.port(ctx)}

    def url(self, ctx: StackContext) -> str:
        return f"http://{LOCAL_HOST}:{self.port(ctx)}"

    def _config_path(self, ctx: StackContext) -> Path:
        return ctx.paths.config / f"{self.name}.yml"

    def prepare(self, ctx: StackContext) -> None:
        _binary(self.binary)
        (ctx.paths.data / self.name).mkdir(parents=True, exist_ok=True)
        self._config_path(ctx).write_text(yaml.safe_dump(self.config(ctx), sort_keys=False))

    def program(self, ctx: StackContext) -> Program:
        return Program(
            command=[
                _binary(self.binary),
                f"--config.file={self._config_path(ctx)}",
                f"{self.storage_flag}={ctx.paths.data / self.name}",
                f"--web.listen-address={LOCAL_HOST}:{self.port(ctx)}",
                *self.flags(ctx),
                "--log.level=warn",
            ]
        )

    def ready(self, ctx: StackContext) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url(ctx)}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class Alertmanager(_PrometheusProjectServer):
    name = "alertmanager"
    binary = "prometheus-alertmanager"
    storage_flag = "--storage.path"

    def port(self, ctx: StackContext) -> int:
        return ctx.settings.alertmanager_port

    def config(self, ctx: StackContext) -> dict[str, Any]:
        """The committed routes and receivers, every webhook pointed at the stack's webhook URL."""
        config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_TEMPLATE.read_text())
        for receiver in config.get("receivers", []):
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = ctx.settings.alert_webhook_url
        return config

    def flags(self, ctx: StackContext) -> list[str]:
        return ["--cluster.listen-address="]  # a single instance: no gossip port

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"ALERTMANAGER_URL": self.url(ctx), "ALERTMANAGER_WEBHOOK_URL": ctx.settings.alert_webhook_url}


class Prometheus(_PrometheusProjectServer):
    name = "prometheus"
    binary = "prometheus"
    storage_flag = "--storage.tsdb.path"
    depends_on = ("alertmanager",)

    def port(self, ctx: StackContext) -> int:
        return ctx.settings.prometheus_port

    def config(self, ctx: StackContext) -> dict[str, Any]:
        interval = f"{ctx.settings.prometheus_scrape_interval_s}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"{LOCAL_HOST}:{ctx.settings.alertmanager_port}"]}]}]
            },
            "rule_files": [str(RULE_FILES)],
            "scrape_configs": scrape_configs(
                TARGETS,
                targets_dir=metrics_targets_dir(ctx),
                static_addresses={
                    "schema_registry": f"{LOCAL_HOST}:{ctx.settings.schema_registry_port}",
                    "flink_jobmanager": f"{LOCAL_HOST}:{ctx.settings.flink_jobmanager_metrics_port}",
                    "flink_taskmanager": f"{LOCAL_HOST}:{ctx.settings.flink_taskmanager_metrics_port}",
                },
            ),
        }

    def prepare(self, ctx: StackContext) -> None:
        super().prepare(ctx)
        for target in TARGETS:  # Prometheus watches these folders only if they exist when it starts
            if target.discovered:
                (metrics_targets_dir(ctx) / target.name).mkdir(parents=True, exist_ok=True)

    def flags(self, ctx: StackContext) -> list[str]:
        return [
            f"--storage.tsdb.retention.time={ctx.settings.prometheus_retention}",
            "--web.enable-lifecycle",  # POST /-/reload re-reads the configuration and the rule files
        ]

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"PROMETHEUS_URL": self.url(ctx), "METRICS_TARGETS_DIR": str(metrics_targets_dir(ctx))}


def observability_components() -> list[Component]:
    return [Alertmanager(), Prometheus()]
