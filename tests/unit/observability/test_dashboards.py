"""The Grafana dashboards as code: the committed JSON and provisioning files are what the code generates, every
metric a panel queries is in the catalogue, every panel has a unit and thresholds, every query a data source."""

from __future__ import annotations

import tomllib
from pathlib import Path

from observability.dashboards.build import OUTPUT, dashboard_json, differences, render
from observability.dashboards.dashboards import DASHBOARDS
from observability.dashboards.panels import GRAFANA_VERSION, POSTGRES, PROMETHEUS
from tests.unit.observability.catalogue import known_families
from tests.unit.observability.dashboard_queries import (
    PROMETHEUS_OWN,
    family_of,
    metric_names,
    prometheus_queries,
    queries,
)

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_files_are_what_the_code_generates() -> None:
    assert differences() == [], "run `python -m observability.dashboards.build` and commit the result"


def test_the_check_notices_an_edited_a_missing_and_a_stale_file(tmp_path: Path) -> None:
    for path, text in render().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert differences(tmp_path) == []
    edited = tmp_path / "dashboards" / "overview.json"
    edited.write_text(edited.read_text().replace("Platform overview", "Overview"))
    (tmp_path / "dashboards" / "mirror.json").unlink()
    (tmp_path / "dashboards" / "old.json").write_text("{}")
    assert differences(tmp_path) == [
        "dashboards/mirror.json: missing",
        "dashboards/overview.json: differs from the code",
        "dashboards/old.json: not generated any more",
    ]


def test_every_metric_a_dashboard_queries_is_in_the_catalogue() -> None:
    names, histograms = known_families()
    unknown = {
        f"{query}: {series}"
        for query in prometheus_queries()
        for series in metric_names(query.text)
        if family_of(series, histograms) not in names | PROMETHEUS_OWN
    }
    assert sorted(unknown) == []


def test_metric_names_are_read_from_promql() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(freightline_a_seconds_bucket{service=~"$service"}[1m]))) / up'
    assert metric_names(expr) == {"freightline_a_seconds_bucket", "up"}
    assert family_of("freightline_a_seconds_bucket", {"freightline_a_seconds"}) == "freightline_a_seconds"
    assert family_of("freightline_b_count", set()) == "freightline_b_count"
    assert metric_names("sum(airflow_executor_open_slots) + airflow_c_total") == {
        "airflow_executor_open_slots",
        "airflow_c_total",
    }


def test_every_panel_has_a_unit_thresholds_and_queries_of_a_known_data_source() -> None:
    for name in DASHBOARDS:
        for panel in dashboard_json(name)["panels"]:
            if panel["type"] == "row":
                continue
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), f"{name} / {panel['title']}: no unit"
            if panel["datasource"]["uid"] == PROMETHEUS.uid:
                assert defaults.get("thresholds", {}).get("steps") or panel["type"] == "timeseries", (
                    f"{name} / {panel['title']}: a stat panel without thresholds"
                )
            assert panel["targets"], f"{name} / {panel['title']}: no query"
    sources = {query.datasource for query in queries()}
    assert sources == {PROMETHEUS.type_val, POSTGRES.type_val}
    assert all(query.text.strip() for query in queries())


def test_every_operational_dashboard_has_a_topic_variable_and_the_overview_a_service_variable() -> None:
    variables = {name: {v["name"] for v in dashboard_json(name)["templating"].get("list", [])} for name in DASHBOARDS}
    assert {"service", "topic"} <= variables["overview"]
    no_topics = {"business", "schema_registry", "flink"}  # SQL windows, a service without topics, Flink jobs
    assert "job_name" in variables["flink"]
    assert all("topic" in found for name, found in variables.items() if name not in no_topics)
    assert {"service", "topic"} <= variables["sinks"]


def test_the_sdk_is_pinned_to_the_grafana_version_the_json_targets() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    pins = [d for d in dev if d.startswith("grafana-foundation-sdk==")]
    assert len(pins) == 1 and pins[0].endswith(f"!{GRAFANA_VERSION}"), pins
    assert OUTPUT == ROOT / "observability" / "dashboards" / "grafana"
