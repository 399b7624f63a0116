"""The one list of what Prometheus scrapes: every Freightline service and the port of its ``/metrics``.

Each entry's ``name`` is the service's own name (its ``SERVICE`` constant: the ``service`` label of its metrics)
and becomes the Prometheus job. ``metrics_port`` is the fixed port the service serves ``/metrics`` on when
deployed (``METRICS_PORT`` in compose and Kubernetes manifests; the registry serves it on its API port).

The local stack cannot use fixed ports: the main job and the tests start services with ``METRICS_PORT=0`` (any
free port), often several instances of one service at once, on a machine other checkouts share. There, a
service registers itself instead: the stack exports ``METRICS_TARGETS_DIR`` and every running service process
keeps ``<dir>/<name>/<pid>.json`` naming its address (``services.common.metrics.TargetFile``), which
Prometheus reads through ``file_sd_configs``. Only the components of the stack at known addresses are static
targets locally: the Schema Registry, the Flink JobManager and TaskManager (Flink's bundled Prometheus
reporter, ``metrics.reporter.prom``, on 9249 when deployed), the Kafka brokers' JMX exporter agents (7071), the
PostgreSQL exporter (9187) and the statsd_exporter that Airflow sends its metrics to (9102). ``scrape_configs``
renders both forms from this list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MetricsTarget:
    name: str
    module: str | None
    """The Python module that runs it; None for a server that is not ours (Flink)."""
    metrics_port: int
    discovered: bool = True
    """True: the process announces itself (``METRICS_TARGETS_DIR``); False: a server at an address known upfront."""


SERVICES: tuple[MetricsTarget, ...] = (
    MetricsTarget("schema_registry", "services.schema_registry", 8081, discovered=False),
    MetricsTarget("generator", "services.generator", 9401),
    MetricsTarget("mirror", "services.mirror", 9402),
    MetricsTarget("enricher", "services.enricher", 9403),
    MetricsTarget("anomaly_detector", "services.anomaly_detector", 9404),
    MetricsTarget("sink_mongodb", "services.sink_mongodb", 9405),
    MetricsTarget("sink_hdfs", "services.sink_hdfs", 9406),
    MetricsTarget("sink_gcs", "services.sink_gcs", 9407),
)
"""Freightline's own services (each a Python module of ``services/``)."""

FLINK: tuple[MetricsTarget, ...] = (
    MetricsTarget("flink_jobmanager", None, 9249, discovered=False),
    MetricsTarget("flink_taskmanager", None, 9249, discovered=False),
)
"""Flink's Prometheus reporter in the JobManager and the TaskManagers (their metric names begin with the job's
name: ``flink_jobmanager_*``, ``flink_taskmanager_*``)."""

KAFKA: tuple[MetricsTarget, ...] = (MetricsTarget("kafka", None, 7071, discovered=False),)
"""The Kafka brokers: the JMX exporter agent in each (``io.prometheus.jmx:jmx_prometheus_javaagent`` 1.0.1, the
rules of ``observability/kafka/jmx-exporter.yml``); one job, a target per broker."""

POSTGRES: tuple[MetricsTarget, ...] = (MetricsTarget("postgres", None, 9187, discovered=False),)
"""PostgreSQL through its exporter (``postgres_exporter``; Debian's ``prometheus-postgres-exporter``)."""

STATSD: tuple[MetricsTarget, ...] = (MetricsTarget("statsd", None, 9102, discovered=False),)
"""Prometheus's statsd_exporter: Airflow's StatsD metrics (``airflow_*``) and the deployment's own events
(``freightline_flink_job_stopped_on_purpose``), as mapped by ``observability/statsd/mapping.yml``."""

TARGETS: tuple[MetricsTarget, ...] = SERVICES + FLINK + KAFKA + POSTGRES + STATSD
"""Everything Prometheus scrapes."""


def scrape_configs(
    targets: Sequence[MetricsTarget],
    *,
    targets_dir: Path,
    static_addresses: Mapping[str, str | Sequence[str]],
    refresh_interval: str = "30s",
) -> list[dict[str, Any]]:
    """One scrape job per service: file-based discovery in ``targets_dir/<name>`` for the services that announce
    themselves (Prometheus watches the folders, which must exist, and re-reads them every ``refresh_interval``
    as well), static targets from ``static_addresses`` (name -> ``host:port``, or several) for the others."""
    jobs: list[dict[str, Any]] = []
    for target in targets:
        job: dict[str, Any] = {"job_name": target.name, "metrics_path": "/metrics"}
        if target.discovered:
            job["file_sd_configs"] = [
                {"files": [str(targets_dir / target.name / "*.json")], "refresh_interval": refresh_interval}
            ]
        else:
            if target.name not in static_addresses:
                raise ValueError(f"no address for the static scrape target {target.name}")
            addresses = static_addresses[target.name]
            job["static_configs"] = [{"targets": [addresses] if isinstance(addresses, str) else list(addresses)}]
        jobs.append(job)
    return jobs
