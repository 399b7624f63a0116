"""The queries of the generated dashboards and the metric families they name (shared by the unit and live tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from observability.dashboards.build import dashboard_json
from observability.dashboards.dashboards import DASHBOARDS

# Grafana's variables as the test evaluates them: "All" of a multi-value variable is its allValue (.*), the rate
# window at least four scrape intervals of the stack (5 s), the range a short dashboard window.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$service": ".*", "$topic": ".*", "$job_name": ".*"}
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
PROMETHEUS_OWN = {"up"}  # series Prometheus writes itself for every target
_NAME = re.compile(r"\b((?:freightline|airflow)_[a-z0-9_]+|up)\b")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    datasource: str
    text: str  # PromQL or SQL as committed, with Grafana's variables

    def resolved(self) -> str:
        text = self.text
        for variable, value in GRAFANA_VARIABLES.items():
            text = text.replace(variable, value)
        return text

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"


def _panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def queries() -> list[Query]:
    found = []
    for name in DASHBOARDS:
        for panel in _panels(dashboard_json(name)):
            for target in panel.get("targets", []):
                source = target.get("datasource", panel.get("datasource", {})).get("type", "")
                text = target.get("expr") if source == "prometheus" else target.get("rawSql")
                found.append(Query(name, panel["title"], target["refId"], source, str(text)))
    return found


def prometheus_queries() -> list[Query]:
    return [q for q in queries() if q.datasource == "prometheus"]


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression selects (label names and functions never start with freightline_ or
    airflow_)."""
    return set(_NAME.findall(promql))


def family_of(series: str, histograms: set[str]) -> str:
    """The family a series name belongs to: a histogram's ``_bucket``/``_count``/``_sum`` are its own."""
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix) and series.removesuffix(suffix) in histograms:
            return series.removesuffix(suffix)
    return series


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+), (?P<label>\w+)\)$")


def variable_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, variable, series selector, label) of every ``label_values`` query variable."""
    found = []
    for name in DASHBOARDS:
        for variable in dashboard_json(name).get("templating", {}).get("list", []):
            match = _LABEL_VALUES.match(str(variable.get("query", "")))
            assert match is not None, f"{name}: variable {variable.get('name')} is not a label_values query"
            found.append((name, variable["name"], match["selector"], match["label"]))
    return found
