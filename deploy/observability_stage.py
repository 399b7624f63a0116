"""The main job's view of itself through Prometheus: throughput, lag and latency percentiles over the run, read
back from the stack's Prometheus beside the report's own counts, and a few panels rendered as PNG images into
``<state>/report/`` (matplotlib over range queries), so that a run can be seen without a Grafana server.

Every figure is a PromQL query over the run's window (its start to now). The main job starts every service
process inside that window, so a process's counters and histogram buckets over the window are its highest values
(``max_over_time``; ``increase`` would miss what a short-lived process counted before its first scrape): records
consumed per service (``freightline_records_consumed_total``, every process and label set summed), the mean and
peak consumption rate, the peak consumer lag, and event time -> processed percentiles per service
(``freightline_event_age_seconds``, the SLO's histogram). Processes that ran before the window started (a stack
shared with other work) would add their earlier counts. The images are range queries: records consumed per
second, consumer lag, and the p99 event age per service.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

QUANTILES = (0.5, 0.95, 0.99)
IMAGE_POINTS = 120  # samples per series in an image: the step is the window divided by this
RATE = "1m"
MIN_LIFETIME_S = 1.0  # a counter's life shorter than this counts as this long (its first batch is not a rate)
ONE_SCRAPE = "no 1-minute rate: mean over its counters' life before their first scrape"
Point = tuple[float, float]


@dataclass
class ServiceFigures:
    """One service over the run, from Prometheus."""

    consumed: float = 0.0  # records consumed (all outcomes)
    mean_rate: float = 0.0  # records consumed per second over the window
    peak_rate: float | None = 0.0  # highest 1-minute rate seen; None: none could be had (a single scrape, no times)
    peak_rate_note: str = ""  # how peak_rate was had when it is not a 1-minute rate
    peak_lag: float = 0.0  # highest consumer lag (records, summed over its topics)
    latency_ms: dict[float, float] = field(default_factory=dict)  # quantile -> event time -> processed, ms


@dataclass
class MonitoringFigures:
    """What Prometheus saw of the run (``RunContext.figures.monitoring``)."""

    window_s: float = 0.0
    services: dict[str, ServiceFigures] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)  # panel title -> PNG


class Prometheus:
    """The few calls of Prometheus's HTTP API the report needs."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=dict(params), timeout=self.timeout_s)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus refused {params.get('query')!r}: {body.get('error')}")
        return body["data"]["result"]

    def by_label(self, query: str, label: str, at: float) -> dict[str, float]:
        """An instant query's values keyed by one label (NaN values left out)."""
        values = {}
        for series in self._get("query", {"query": query, "time": at}):
            value = float(series["value"][1])
            if not math.isnan(value):
                values[series["metric"].get(label, "")] = value
        return values

    def samples(self, query: str, at: float) -> list[dict[str, Any]]:
        """An instant query's raw result (a range selector gives each series' samples as ``values``)."""
        result: list[dict[str, Any]] = self._get("query", {"query": query, "time": at})
        return result

    def ranges(
        self, query: str, label: str, start: float, end: float, step: float
    ) -> dict[str, list[tuple[float, float]]]:
        """A range query's series keyed by one label: (unix time, value) pairs, NaN left out."""
        params = {"query": query, "start": start, "end": end, "step": max(step, 1.0)}
        result = {}
        for series in self._get("query_range", params):
            points = [(float(t), float(v)) for t, v in series["values"] if not math.isnan(float(v))]
            result[series["metric"].get(label, "")] = points
        return result


def _window(seconds: float) -> str:
    return f"{max(math.ceil(seconds), 60)}s"


THROUGHPUT = "records consumed per second"
LAG = "consumer lag"
PANELS: dict[str, tuple[str, str, str]] = {
    THROUGHPUT: (
        f"sum by (service) (rate(freightline_records_consumed_total[{RATE}]))",
        "records/s",
        "throughput.png",
    ),
    LAG: ("sum by (service) (freightline_consumer_lag_records)", "records", "lag.png"),
    "event time -> processed p99": (
        f"histogram_quantile(0.99, sum by (service, le) (rate(freightline_event_age_seconds_bucket[{RATE}]))) * 1000",
        "ms",
        "latency_p99.png",
    ),
}
"""The images: title -> (PromQL, unit, file name)."""


def _step(started: float, ended: float) -> float:
    return max((ended - started) / IMAGE_POINTS, 1.0)


def _query_end(started: float, ended: float) -> float:
    """Where the window's queries end: one step past ``ended``. A range query evaluates at ``started`` plus whole
    steps, and a service's last scrape may fall after the last of them that is not past ``ended``; a rate over a
    service that was scraped twice only (a short process) exists only at evaluations after its second scrape."""
    return ended + _step(started, ended)


def _peaks(prometheus: Prometheus, title: str, started: float, ended: float) -> dict[str, float]:
    """The highest value of each service's series of one panel over the window."""
    series = prometheus.ranges(PANELS[title][0], "service", started, _query_end(started, ended), _step(started, ended))
    return {service: max(v for _, v in points) for service, points in series.items() if points}


def _series_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in labels.items() if name != "__name__"))


def rates_before_first_scrape(
    counters: Sequence[Mapping[str, Any]], created: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Per service, the highest rate of one of its processes over the time before Prometheus first scraped it.

    ``counters`` are the raw samples of a counter (``<name>_total[window]``), ``created`` those of the gauge
    prometheus_client serves beside it (``<name>_created``: when each label set began counting, unix seconds). A
    series' first sample divided by the time from its creation to that sample (at least ``MIN_LIFETIME_S``) is its
    mean rate until then; a process's (``instance``) series are summed, and a service gets its busiest process. A
    series without its creation time is left out. This is what a process scraped only once (one that ran for less
    than a scrape interval) has instead of a rate, which needs two scrapes."""
    created_at = {_series_key(s["metric"]): float(s["values"][-1][1]) for s in created if s.get("values")}
    per_process: dict[tuple[str, str], float] = defaultdict(float)
    for series in counters:
        labels = series["metric"]
        began = created_at.get(_series_key(labels))
        if began is None or not series.get("values"):
            continue
        at, value = (float(x) for x in series["values"][0])
        per_process[(labels.get("service", ""), labels.get("instance", ""))] += value / max(at - began, MIN_LIFETIME_S)
    rates: dict[str, float] = {}
    for (service, _), rate in per_process.items():
        rates[service] = max(rates.get(service, 0.0), rate)
    return rates


def _first_scrape_rates(prometheus: Prometheus, started: float, ended: float) -> dict[str, float]:
    end = _query_end(started, ended)
    window = _window(end - started)
    return rates_before_first_scrape(
        prometheus.samples(f"freightline_records_consumed_total[{window}]", end),
        prometheus.samples(f"freightline_records_consumed_created[{window}]", end),
    )


def collect(prometheus: Prometheus, started: float, ended: float) -> MonitoringFigures:
    """The run's figures per service over ``[started, ended]`` (unix seconds)."""
    window = _window(ended - started)
    consumed = prometheus.by_label(
        f"sum by (service) (max_over_time(freightline_records_consumed_total[{window}]))", "service", ended
    )
    peak_rate = _peaks(prometheus, THROUGHPUT, started, ended)
    peak_lag = _peaks(prometheus, LAG, started, ended)
    latency = {
        q: prometheus.by_label(
            f"histogram_quantile({q}, sum by (service, le) "
            f"(max_over_time(freightline_event_age_seconds_bucket[{window}])))",
            "service",
            ended,
        )
        for q in QUANTILES
    }
    first_rates: dict[str, float] | None = None
    figures = MonitoringFigures(window_s=ended - started)
    for service in sorted(set(consumed) | set(peak_lag) | {s for values in latency.values() for s in values}):
        service_figures = ServiceFigures(
            consumed=consumed.get(service, 0.0),
            mean_rate=consumed.get(service, 0.0) / max(ended - started, 1.0),
            peak_rate=peak_rate.get(service, 0.0),
            peak_lag=peak_lag.get(service, 0.0),
            latency_ms={q: values[service] * 1000 for q, values in latency.items() if service in values},
        )
        if not service_figures.peak_rate and service_figures.consumed:
            # a service scraped once has no 1-minute rate: its counters' mean rate since they were created instead
            if first_rates is None:
                first_rates = _first_scrape_rates(prometheus, started, ended)
            fallback = first_rates.get(service)
            service_figures.peak_rate = fallback
            service_figures.peak_rate_note = ONE_SCRAPE if fallback is not None else ""
        figures.services[service] = service_figures
    return figures


def render(prometheus: Prometheus, started: float, ended: float, directory: Path) -> dict[str, Path]:
    """One PNG per panel of ``PANELS`` over ``[started, ended]``, a line per service; panels without data are left
    out."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    directory.mkdir(parents=True, exist_ok=True)
    step, end = _step(started, ended), _query_end(started, ended)
    images = {}
    for title, (query, unit, name) in PANELS.items():
        series = prometheus.ranges(query, "service", started, end, step)
        if not any(series.values()):
            continue
        figure, axes = pyplot.subplots(figsize=(9, 3.6), dpi=100)
        for service, points in sorted(series.items()):
            if points:
                axes.plot([t - started for t, _ in points], [v for _, v in points], label=service or "all")
        axes.set_title(title)
        axes.set_xlabel("seconds since the run started")
        axes.set_ylabel(unit)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figure.tight_layout()
        path = directory / name
        figure.savefig(path)
        pyplot.close(figure)
        images[title] = path
    return images


def observe_run(prometheus_url: str, started: float, directory: Path, ended: float | None = None) -> MonitoringFigures:
    """Figures and images of the run that began at ``started`` (unix seconds), up to ``ended`` (default now)."""
    prometheus = Prometheus(prometheus_url)
    end = ended if ended is not None else time.time()
    figures = collect(prometheus, started, end)
    figures.images = render(prometheus, started, end, directory)
    return figures


def report_rows(figures: MonitoringFigures) -> list[tuple[str, str]]:
    """The report's rows: one per service with its figures, then a link per image."""
    rows = [("window", f"{figures.window_s:.0f}s")]
    for service, f in figures.services.items():
        latency = ", ".join(f"p{round(q * 100)} {ms:,.0f} ms" for q, ms in sorted(f.latency_ms.items()))
        if f.peak_rate is None:
            peak = "peak n/a (one scrape)"
        else:
            peak = f"{f.peak_rate:,.0f}/s peak" + (f" ({f.peak_rate_note})" if f.peak_rate_note else "")
        rows.append(
            (
                service,
                f"consumed {f.consumed:,.0f} ({f.mean_rate:,.0f}/s mean, {peak}), "
                f"peak lag {f.peak_lag:,.0f}" + (f", event time -> processed {latency}" if latency else ""),
            )
        )
    for title, path in figures.images.items():
        rows.append((f"image: {title}", path.resolve().as_uri()))
    return rows


SECTION = "Monitoring (Prometheus)"


def stage_monitoring(ctx: RunContext) -> None:
    """The report's monitoring section: the run's figures from Prometheus and its images in ``<state>/report/``."""
    url = ctx.env.get("PROMETHEUS_URL")
    if not url:
        ctx.report.add(SECTION, "Prometheus", "not in the stack's environment: no figures")
        return
    figures = observe_run(url, ctx.started_at, ctx.stack.ctx.paths.home / "report")
    ctx.figures.monitoring = figures
    for key, value in report_rows(figures):
        ctx.report.add(SECTION, key, value)
    if not figures.services:
        ctx.report.problems.append(f"Prometheus ({url}) has no service figures for the run")
