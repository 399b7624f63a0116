"""The stack's monitoring: Prometheus and Alertmanager (Debian's packages, run by the stack's supervisor).

- ``prometheus``: scrapes what ``deploy/metrics_targets.py`` lists (the Schema Registry and the Flink JobManager
  and TaskManager reporters at their stack addresses, every service through the target files the services keep
  in ``METRICS_TARGETS_DIR``), evaluates the rules of ``observability/prometheus/*.rules.yml`` (read in place:
  ``POST /-/reload`` picks up an edit) and sends alerts to the stack's Alertmanager. Data under
  ``data/prometheus``; the configuration is rendered into ``config/prometheus.yml`` on every start.
- ``alertmanager``: the routes and receivers of ``observability/alertmanager/alertmanager.yml``, each webhook
  pointed at ``FREIGHTLINE_ALERT_WEBHOOK_URL``; clustering off; data under ``data/alertmanager``.

- ``postgres_exporter``: Debian's ``prometheus-postgres-exporter`` on the stack's PostgreSQL, scraped as the job
  ``postgres``; the brokers serve their own metrics (the JMX exporter agent in their JVMs, ``components.py``).
- ``statsd_exporter``: Prometheus's statsd_exporter (built by ``setup`` from its Go module,
  ``launchers/statsd_exporter``) receiving Airflow's StatsD metrics (and the main job's events) and serving them,
  mapped by ``observability/statsd/mapping.yml``, to Prometheus's job ``statsd``.
- ``jaeger``: Jaeger v1.76.0 all-in-one (the ``cmd/jaeger`` binary, built by ``setup`` from its Go module:
  ``launchers/jaeger`` holds the module with it as a tool, go.sum committed) with memory storage: the services'
  spans arrive over OTLP (``JAEGER_OTLP_ENDPOINT``, the OTLP/HTTP receiver; a service exports there when its
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` names it), the UI and query API (``/api/services``, ``/api/traces``) answer at
  ``JAEGER_UI_URL``. The configuration is rendered into ``config/jaeger.yml`` on every start; traces are lost
  when it stops.

Debian's system services of the Prometheus packages are never used: the stack runs the binaries itself on its
own ports.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from deploy.local.builds import go_build
from deploy.local.components import Component, KafkaBroker, Postgres, Program
from deploy.local.context import REPO_ROOT, StackContext
from deploy.metrics_targets import TARGETS, scrape_configs
from services.common.settings import LOCAL_HOST

OBSERVABILITY = REPO_ROOT / "observability"
RULE_FILES = OBSERVABILITY / "prometheus" / "*.rules.yml"
ALERTMANAGER_TEMPLATE = OBSERVABILITY / "alertmanager" / "alertmanager.yml"
JAEGER_SOURCE = Path(__file__).resolve().parent / "launchers" / "jaeger"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
STATSD_SOURCE = Path(__file__).resolve().parent / "launchers" / "statsd_exporter"
STATSD_PACKAGE = "github.com/prometheus/statsd_exporter"
STATSD_MAPPING = OBSERVABILITY / "statsd" / "mapping.yml"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make setup` (it installs Debian's Prometheus packages)")
    return path


def _answers(url: str, timeout: float = 2) -> bool:
    """Whether ``url`` answers 200 (a server's readiness)."""
    import httpx

    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


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
        return _answers(f"{self.url(ctx)}/-/ready")


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
                    "kafka": [
                        KafkaBroker("kafka", sasl=False).metrics_address(ctx),
                        KafkaBroker("remote_kafka", sasl=True).metrics_address(ctx),
                    ],
                    "postgres": PostgresExporter().address(ctx),
                    "statsd": StatsdExporter().address(ctx),
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


class PostgresExporter(Component):
    """postgres_exporter (Debian's ``prometheus-postgres-exporter``) reading the stack's PostgreSQL as its
    superuser (the server trusts loopback connections): ``pg_up``, connections, transactions and sizes per
    database, locks, replication, the background writer."""

    name = "postgres_exporter"
    binary = "prometheus-postgres-exporter"
    depends_on = ("postgres",)

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": ctx.settings.postgres_exporter_port}

    def address(self, ctx: StackContext) -> str:
        return f"{LOCAL_HOST}:{ctx.settings.postgres_exporter_port}"

    def prepare(self, ctx: StackContext) -> None:
        _binary(self.binary)

    def program(self, ctx: StackContext) -> Program:
        dsn = f"{Postgres().dsn(ctx, 'postgres')}?sslmode=disable"
        return Program(
            command=[_binary(self.binary), f"--web.listen-address={self.address(ctx)}", "--log.level=warn"],
            environment={"DATA_SOURCE_NAME": dsn},
        )

    def ready(self, ctx: StackContext) -> bool:
        return _answers(f"http://{self.address(ctx)}/metrics", timeout=5)

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {}


class Jaeger(Component):
    """Jaeger all-in-one (v2, an OpenTelemetry Collector build): OTLP receivers, memory storage, the query
    extension serving the UI and its HTTP API; ready when ``/api/services`` answers 200."""

    name = "jaeger"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        settings = ctx.settings
        return {
            "ui": settings.jaeger_ui_port,
            "otlp-http": settings.jaeger_otlp_http_port,
            "otlp-grpc": settings.jaeger_otlp_grpc_port,
            "query-grpc": settings.jaeger_query_grpc_port,
        }

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.home / "bin" / "jaeger"

    def setup(self, ctx: StackContext, progress: Callable[[str], None]) -> None:
        """Build the binary from the module's pinned version (``launchers/jaeger/go.mod``); idempotent."""
        go_build(
            self.binary(ctx), JAEGER_SOURCE, JAEGER_PACKAGE, "Jaeger (the first build takes several minutes)", progress
        )

    def _config_path(self, ctx: StackContext) -> Path:
        return ctx.paths.config / f"{self.name}.yml"

    def config(self, ctx: StackContext) -> dict[str, Any]:
        """One traces pipeline, OTLP in, memory storage out; no receivers or extensions beyond that (every port
        it binds is one of the stack's), and no self-telemetry server."""
        settings = ctx.settings
        storage = "memstore"

        def address(port: int) -> dict[str, str]:
            return {"endpoint": f"{LOCAL_HOST}:{port}"}

        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["jaeger_storage_exporter"],
                    }
                },
                "telemetry": {
                    "resource": {"service.name": "jaeger"},
                    "metrics": {"level": "none"},
                    "logs": {"level": "warn"},
                },
            },
            "extensions": {
                "jaeger_storage": {"backends": {storage: {"memory": {"max_traces": settings.jaeger_max_traces}}}},
                "jaeger_query": {
                    "storage": {"traces": storage},
                    "http": address(settings.jaeger_ui_port),
                    "grpc": address(settings.jaeger_query_grpc_port),
                },
            },
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": address(settings.jaeger_otlp_grpc_port),
                        "http": address(settings.jaeger_otlp_http_port),
                    }
                }
            },
            "processors": {"batch": {}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": storage}},
        }

    def prepare(self, ctx: StackContext) -> None:
        if not self.binary(ctx).exists():
            self.setup(ctx, lambda _: None)
        self._config_path(ctx).write_text(yaml.safe_dump(self.config(ctx), sort_keys=False))

    def program(self, ctx: StackContext) -> Program:
        return Program(command=[str(self.binary(ctx)), "--config", str(self._config_path(ctx))])

    def url(self, ctx: StackContext) -> str:
        return f"http://{LOCAL_HOST}:{ctx.settings.jaeger_ui_port}"

    def otlp_endpoint(self, ctx: StackContext) -> str:
        return f"http://{LOCAL_HOST}:{ctx.settings.jaeger_otlp_http_port}"

    def ready(self, ctx: StackContext) -> bool:
        return _answers(f"{self.url(ctx)}/api/services")

    def exports(self, ctx: StackContext) -> dict[str, str]:
        """The UI and query API, and the OTLP/HTTP endpoint for a service's ``OTEL_EXPORTER_OTLP_ENDPOINT``
        (exported under its own name: services started with the stack's environment trace only when asked)."""
        return {"JAEGER_UI_URL": self.url(ctx), "JAEGER_OTLP_ENDPOINT": self.otlp_endpoint(ctx)}


class StatsdExporter(Component):
    """Prometheus's statsd_exporter (built by ``setup`` from its Go module, ``launchers/statsd_exporter``): StatsD
    over UDP and TCP on ``FREIGHTLINE_STATSD_PORT`` (Airflow sends its metrics there; the main job its events),
    translated by ``observability/statsd/mapping.yml`` into the series it serves on ``/metrics``
    (``FREIGHTLINE_STATSD_EXPORTER_PORT``, Prometheus's job ``statsd``). Its series live in its memory: a restart
    forgets them."""

    name = "statsd_exporter"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"statsd": ctx.settings.statsd_port, "http": ctx.settings.statsd_exporter_port}

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.home / "bin" / "statsd_exporter"

    def setup(self, ctx: StackContext, progress: Callable[[str], None]) -> None:
        """Build the binary from the module's pinned version (``launchers/statsd_exporter/go.mod``); idempotent."""
        go_build(self.binary(ctx), STATSD_SOURCE, STATSD_PACKAGE, "statsd_exporter", progress)

    def prepare(self, ctx: StackContext) -> None:
        if not self.binary(ctx).exists():
            self.setup(ctx, lambda _: None)

    def address(self, ctx: StackContext) -> str:
        """Where Prometheus scrapes it."""
        return f"{LOCAL_HOST}:{ctx.settings.statsd_exporter_port}"

    def program(self, ctx: StackContext) -> Program:
        statsd = f"{LOCAL_HOST}:{ctx.settings.statsd_port}"
        flags = {
            "statsd.mapping-config": STATSD_MAPPING,
            "statsd.listen-udp": statsd,
            "statsd.listen-tcp": statsd,
            "web.listen-address": self.address(ctx),
            "log.level": "warn",
        }
        return Program(command=[str(self.binary(ctx)), *(f"--{flag}={value}" for flag, value in flags.items())])

    def ready(self, ctx: StackContext) -> bool:
        return _answers(f"http://{self.address(ctx)}/-/ready")

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {
            "STATSD_HOST": LOCAL_HOST,
            "STATSD_PORT": str(ctx.settings.statsd_port),
            "STATSD_EXPORTER_URL": f"http://{self.address(ctx)}",
        }


def observability_components() -> list[Component]:
    return [Alertmanager(), PostgresExporter(), StatsdExporter(), Prometheus(), Jaeger()]
