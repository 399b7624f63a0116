"""Small building blocks over grafana-foundation-sdk: data sources, queries and the panel kinds the dashboards use.

The SDK is pinned to the Grafana version the JSON targets (``GRAFANA_VERSION``, see ``pyproject.toml``). It has no
builder for the PostgreSQL data source's queries, so ``Sql`` is one (the data source's own JSON fields).
"""

from __future__ import annotations

from typing import Any, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

GRAFANA_VERSION = "11.6.0"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="freightline-prometheus")
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="freightline-postgres")
RATE = "$__rate_interval"  # Grafana's rate window: at least four scrape intervals
SLO_SECONDS = 0.1  # the latency SLO: 99% of events processed within 100 ms of their event time
SLO_TARGET = 0.99


def prom(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).datasource(PROMETHEUS)


class SqlQuery(cogvariants.Dataquery):
    """A raw SQL query of Grafana's PostgreSQL data source."""

    def __init__(self, sql: str, ref: str, fmt: str) -> None:
        self.sql, self.ref, self.fmt = sql, ref, fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.sql,
            "refId": self.ref,
        }


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, sql: str, ref: str = "A", fmt: str = "time_series") -> None:
        self._query = SqlQuery(sql, ref, fmt)

    def build(self) -> SqlQuery:
        return self._query


def thresholds(*steps: tuple[float, str], base: str = "green") -> dashboard.ThresholdsConfig:
    """Absolute thresholds: ``base`` below the first step, each step's colour from its value up."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)])
    )


PanelT = TypeVar("PanelT", timeseries.Panel, stat.Panel, table.Panel)


def _panel(
    panel: PanelT,
    title: str,
    unit: str,
    source: DataSourceRef,
    queries: list[cogbuilder.Builder[Any]],
    *,
    description: str,
    width: int,
    height: int,
) -> PanelT:
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(source)
        .targets(queries)
        .span(width)
        .height(height)
    )


def graph(
    title: str,
    unit: str,
    *queries: cogbuilder.Builder[Any],
    description: str = "",
    limits: dashboard.ThresholdsConfig | None = None,
    width: int = 12,
    stack: bool = False,
) -> timeseries.Panel:
    """A time series panel of Prometheus queries; with ``limits`` the thresholds are drawn as dashed lines."""
    legend = (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs(["lastNotNull", "max"])
    )
    panel = _panel(
        timeseries.Panel(), title, unit, PROMETHEUS, list(queries), description=description, width=width, height=8
    )
    panel = panel.fill_opacity(10).legend(legend)
    if stack:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if limits is not None:
        panel = panel.thresholds(limits).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def rate_graph(
    title: str,
    metric: str,
    by: tuple[str, ...],
    *,
    selector: str = "",
    unit: str = "cps",
    description: str = "",
    limits: dashboard.ThresholdsConfig | None = None,
    width: int = 12,
) -> timeseries.Panel:
    """Per-second rate of a counter summed by the labels ``by`` (one series per combination)."""
    legend = " ".join(f"{{{{{label}}}}}" for label in by) or title
    expr = f"sum by ({', '.join(by)}) (rate({metric}{{{selector}}}[{RATE}]))"
    return graph(title, unit, prom(expr, legend), description=description, limits=limits, width=width)


def single(
    title: str,
    unit: str,
    query: cogbuilder.Builder[Any],
    *,
    description: str = "",
    limits: dashboard.ThresholdsConfig,
    width: int = 6,
) -> stat.Panel:
    """A stat panel (the last value), coloured by ``limits``."""
    panel = _panel(stat.Panel(), title, unit, PROMETHEUS, [query], description=description, width=width, height=4)
    return (
        panel.color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(limits)
    )


def sql_table(title: str, query: Sql, *, description: str = "", unit: str = "short", width: int = 12) -> table.Panel:
    return _panel(table.Panel(), title, unit, POSTGRES, [query], description=description, width=width, height=9)


def sql_graph(title: str, unit: str, query: Sql, *, description: str = "", width: int = 12) -> timeseries.Panel:
    panel = _panel(timeseries.Panel(), title, unit, POSTGRES, [query], description=description, width=width, height=9)
    return panel.fill_opacity(10)


def label_variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    """A multi-value variable over a label's values in Prometheus, "All" meaning any value (``.*``)."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({query}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def new_dashboard(uid: str, title: str, description: str, tags: list[str]) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["freightline", *tags])
        .timezone("utc")
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
    )
