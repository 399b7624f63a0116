"""The metrics catalogue (observability/METRICS.md) and the metric families each service registers, built the
way its entrypoint builds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from deploy.metrics_targets import SERVICES
from services.anomaly_detector.service import DetectorMetrics
from services.common.metrics import BatchHistogram, ServiceMetrics
from services.common.sinks.runner import SinkMetrics
from services.enricher.app import EnricherMetrics
from services.generator.runner import GeneratorMetrics
from services.mirror.mirror import MirrorMetrics
from services.schema_registry.app import RegistryMetrics


@dataclass(frozen=True)
class Family:
    name: str  # as queried: counters with their _total
    type: str
    labels: tuple[str, ...]


CATALOGUE = Path(__file__).resolve().parents[3] / "observability" / "METRICS.md"
STATSD_MAPPING = CATALOGUE.parent / "statsd" / "mapping.yml"
EVERY_SERVICE = "every service"


def catalogue(text: str) -> dict[Family, set[str]]:
    """The table's rows: family -> the services that expose it."""
    every = {t.name for t in SERVICES if t.name != "schema_registry"}
    rows: dict[Family, set[str]] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        name, kind, labels, by = (cell.strip() for cell in line.strip("|").split("|")[:4])
        family = Family(name.strip("`"), kind, () if labels == "-" else tuple(labels.split(", ")))
        assert family not in rows, f"{family.name} listed twice"
        rows[family] = every if by == EVERY_SERVICE else set(by.split(", "))
    return rows


def statsd_families() -> dict[str, str]:
    """The series statsd_exporter serves, as its mapping names them (Airflow's metrics and the deployment's events):
    name -> ``histogram`` for the timers it observes as histograms, else ``other``. It serves no others."""
    mappings = yaml.safe_load(STATSD_MAPPING.read_text())["mappings"]
    return {m["name"]: m.get("observer_type", "other") for m in mappings if m.get("action") != "drop"}


def known_families() -> tuple[set[str], set[str]]:
    """The family names a dashboard may query, and those among them that are histograms: the catalogue's and
    statsd_exporter's."""
    rows = catalogue(CATALOGUE.read_text())
    statsd = statsd_families()
    names = {f.name for f in rows} | set(statsd)
    histograms = {f.name for f in rows if f.type == "histogram"} | {n for n, t in statsd.items() if t == "histogram"}
    return names, histograms


def _holders(service: str) -> list[object]:
    """The objects holding a service's metric families (its registry is the first's ``registry``)."""
    if service == "schema_registry":
        return [RegistryMetrics()]
    if service.startswith("sink_"):
        sink = SinkMetrics(service)
        return [sink.base, sink]
    base = ServiceMetrics(service)
    extras: dict[str, Callable[[ServiceMetrics], object]] = {
        "generator": GeneratorMetrics,
        "mirror": MirrorMetrics,
        "enricher": EnricherMetrics,
        "anomaly_detector": DetectorMetrics,
    }
    return [base, extras[service](base)]


def _family(metric: object) -> Family | None:
    if isinstance(metric, BatchHistogram):
        return Family(metric.name, "histogram", metric.labelnames)
    if isinstance(metric, MetricWrapperBase):
        kind = str(metric._type)
        name = f"{metric._name}_total" if kind == "counter" else metric._name
        return Family(name, kind, tuple(metric._labelnames))
    return None


def exposed(service: str) -> tuple[set[Family], set[str]]:
    """The families held by the service's metric objects, and the family names its registry renders."""
    holders = _holders(service)
    families = {f for holder in holders for value in vars(holder).values() if (f := _family(value)) is not None}
    registry: CollectorRegistry = holders[0].registry  # type: ignore[attr-defined]
    rendered = {metric.name + ("_total" if metric.type == "counter" else "") for metric in registry.collect()}
    return families, rendered
