"""The report's peak rates for services Prometheus scraped only once: the pure arithmetic over Prometheus's raw
samples, and which figure the report shows (Prometheus's answers given as data: the live path is
tests/integration/observability/test_report_monitoring.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.observability_stage import (
    ONE_SCRAPE,
    MonitoringFigures,
    Prometheus,
    ServiceFigures,
    collect,
    rates_before_first_scrape,
    report_rows,
)

STARTED, ENDED = 1_000.0, 1_300.0


def _series(name: str, service: str, instance: str, topic: str, *samples: tuple[float, float]) -> dict[str, Any]:
    labels = {"__name__": name, "service": service, "instance": instance, "job": service, "topic": topic}
    return {"metric": labels, "values": [[t, str(v)] for t, v in samples]}


def _counter(service: str, instance: str, topic: str, *samples: tuple[float, float]) -> dict[str, Any]:
    return _series("freightline_records_consumed_total", service, instance, topic, *samples)


def _created(service: str, instance: str, topic: str, at: float) -> dict[str, Any]:
    return _series("freightline_records_consumed_created", service, instance, topic, (at + 3, at))


def test_a_series_scraped_once_has_its_mean_rate_since_it_was_created() -> None:
    counters = [
        _counter("sink_hdfs", "a:1", "orders", (1_010.0, 300)),  # 300 records in the 3 s before its only scrape
        _counter("sink_hdfs", "a:1", "shipments", (1_010.0, 100)),  # the same process: its rates add up
        _counter("sink_hdfs", "b:2", "orders", (1_200.0, 50)),  # another process of the service, slower
        _counter("enricher", "c:3", "orders", (1_010.0, 40)),  # created 0.5 s before its scrape: counted as 1 s
        _counter("mirror", "d:4", "orders", (1_010.0, 99)),  # no creation time: left out
    ]
    created = [
        _created("sink_hdfs", "a:1", "orders", 1_007.0),
        _created("sink_hdfs", "a:1", "shipments", 1_005.0),
        _created("sink_hdfs", "b:2", "orders", 1_150.0),
        _created("enricher", "c:3", "orders", 1_009.5),
    ]
    assert rates_before_first_scrape(counters, created) == {"sink_hdfs": 300 / 3 + 100 / 5, "enricher": 40.0}


def test_the_first_sample_gives_the_rate_when_there_are_more() -> None:
    counters = [_counter("sink_gcs", "a:1", "orders", (1_010.0, 100), (1_015.0, 100))]
    assert rates_before_first_scrape(counters, [_created("sink_gcs", "a:1", "orders", 1_000.0)]) == {"sink_gcs": 10.0}


class _Answers(Prometheus):
    """Prometheus's answers to the report's queries, by the query's first words."""

    def __init__(self, answers: Mapping[str, list[dict[str, Any]]]) -> None:
        super().__init__("http://prometheus.invalid")
        self.answers = answers

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        query = str(params["query"])
        return next((result for start, result in self.answers.items() if query.startswith(start)), [])


def _vector(service: str, value: float) -> dict[str, Any]:
    return {"metric": {"service": service}, "value": [ENDED, str(value)]}


def _matrix(service: str, *values: float) -> dict[str, Any]:
    return {"metric": {"service": service}, "values": [[STARTED + 5 * i, str(v)] for i, v in enumerate(values)]}


def test_the_report_falls_back_to_the_rate_before_the_first_scrape_only_without_a_1m_rate() -> None:
    prometheus = _Answers(
        {
            "sum by (service) (max_over_time(freightline_records_consumed_total": [
                _vector("sink_gcs", 600),  # scraped often: its 1-minute rate is the figure
                _vector("sink_hdfs", 300),  # scraped once: no 1-minute rate
                _vector("sink_mongodb", 20),  # scraped once, and no creation time
            ],
            "sum by (service) (rate(freightline_records_consumed_total": [_matrix("sink_gcs", 4, 9, 7)],
            "freightline_records_consumed_total[": [
                _counter("sink_gcs", "a:1", "orders", (1_010.0, 600)),
                _counter("sink_hdfs", "b:2", "orders", (1_010.0, 300)),
                _counter("sink_mongodb", "c:3", "orders", (1_010.0, 20)),
            ],
            "freightline_records_consumed_created[": [
                _created("sink_gcs", "a:1", "orders", 1_009.0),
                _created("sink_hdfs", "b:2", "orders", 1_007.0),
            ],
        }
    )
    figures = collect(prometheus, STARTED, ENDED)
    assert figures.services["sink_gcs"].peak_rate == 9 and figures.services["sink_gcs"].peak_rate_note == ""
    assert figures.services["sink_hdfs"].peak_rate == 100 and figures.services["sink_hdfs"].peak_rate_note == ONE_SCRAPE
    assert figures.services["sink_mongodb"].peak_rate is None

    rows = dict(report_rows(figures))
    assert "9/s peak)" in rows["sink_gcs"]
    assert f"100/s peak ({ONE_SCRAPE})" in rows["sink_hdfs"]
    assert "peak n/a (one scrape)" in rows["sink_mongodb"]


def test_a_service_that_consumed_nothing_keeps_a_zero_peak() -> None:
    rows = dict(report_rows(MonitoringFigures(window_s=60, services={"mirror": ServiceFigures()})))
    assert "0/s peak)" in rows["mirror"]
