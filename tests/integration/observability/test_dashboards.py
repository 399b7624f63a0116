"""Every query of every dashboard against the live Prometheus of the stack, while the real services run.

The generator writes a small world on unique topics (product views to the remote cluster, the rest locally), and
every service family the dashboards show runs as its own process, as deployed (``deploy.processes.ServiceProcess``
with the stack's environment, so each announces its ``/metrics`` in ``METRICS_TARGETS_DIR``): the mirror, the
enricher, the anomaly detector and the three sinks, on those topics, with their own groups and targets. One
record that is not Avro makes the sinks and stages that read its topic dead-letter it. The test then evaluates
each panel's PromQL (Grafana's variables at "All", the rate window 1m) through ``/api/v1/query`` until each
returns data: a query that does not parse, or still returns nothing when the hang guard expires, fails it, named.
It also checks that every metric a dashboard names is one Prometheus has scraped, and every variable's values.

The overview's Airflow row reads what the stack's Airflow sends to its statsd_exporter, and a failed run and task
of a DAG of the test's own (sent through Airflow's metrics module).

The business dashboard's SQL panels are checked by ``test_business_sql.py`` against tables of the contracts'
shape; their live proof over the stream processors' own tables comes with those jobs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer as RawProducer

from deploy import flink_jobs
from deploy.local.airflow import metrics_environment
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.processes import ServiceProcess, local_client_config, remote_client_config
from schemas import topics as topic_names
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_mongodb.settings import MongoSinkSettings
from tests.integration.observability.platform import (
    default_topics,
    enricher_process,
    mirror_process,
    run_generator,
    sending_airflow_metrics,
    sink_process,
    wait_for_topic,
)
from tests.unit.observability.catalogue import known_families
from tests.unit.observability.dashboard_queries import (
    GRAFANA_VARIABLES,
    PROMETHEUS_OWN,
    Query,
    family_of,
    metric_names,
    prometheus_queries,
    variable_queries,
)

pytestmark = pytest.mark.integration

EVENTS = 4000
HANG_GUARD_S = 240.0
UNKNOWN_SCHEMA_ID = b"\x00" + (2**31 - 7).to_bytes(4, "big")  # the wire format's magic byte, then the id
# Detector thresholds low enough that a small world surely has anomalies of a few types.
DETECTOR = {"IDLE_FLUSH_S": "2", "SPIKE_MIN_VIEWS": "2", "DELAY_MIN_SHIPMENTS": "1", "ERROR_THRESHOLD": "0.5"}


def _services(env: dict[str, str], prefix: str, logs: Path, unique_name: Callable[[str], str]) -> list[ServiceProcess]:
    return [
        mirror_process(env, prefix, logs, unique_name),
        enricher_process(env, prefix, logs),
        ServiceProcess(
            "services.anomaly_detector",
            env,
            logs / "anomaly_detector.log",
            ANOMALY_DETECTOR_TOPIC_PREFIX=prefix,
            ANOMALY_DETECTOR_GROUP_ID=unique_name("detector"),
            **{f"ANOMALY_DETECTOR_{name}": value for name, value in DETECTOR.items()},
        ),
        sink_process(env, prefix, logs, unique_name, MongoSinkSettings, DATABASE=unique_name("dash").replace("-", "_")),
        sink_process(env, prefix, logs, unique_name, HdfsSinkSettings, ROOT=f"/freightline/test/{unique_name('dash')}"),
        sink_process(env, prefix, logs, unique_name, GcsSinkSettings, BUCKET=unique_name("dash"), CREATE_BUCKET="true"),
    ]


@pytest.fixture
def running_platform(
    monitored_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[list[ServiceProcess]]:
    """A small generator run on unique topics, one poison record, and every service family running on them."""
    env = {**monitored_env, "LOG_LEVEL": "WARNING"}
    began = time.monotonic()
    prefix = unique_name("dash") + "-"
    run_generator(
        env,
        prefix,
        EVENTS,
        11,
        tmp_path,
        GENERATOR_ANOMALIES_PER_MINUTE="30",
        GENERATOR_REFERENCE_SNAPSHOT="false",  # references start unknown: the enricher marks them UNKNOWN
    )
    print(f"generator done after {time.monotonic() - began:.0f}s")
    # Records each service family must dead-letter: not Avro (sinks, enricher, detector), an Avro header with
    # a schema id no registry holds (the mirror cannot translate it).
    local = RawProducer(local_client_config(env))
    for topic in (default_topics(GcsSinkSettings).split(",")[0], topic_names.ORDERS):
        local.produce(prefix + topic, b"not avro", b"poison")
    assert local.flush(30) == 0
    remote = RawProducer(remote_client_config(env))
    remote.produce(prefix + topic_names.UPSTREAM_PRODUCT_VIEWS, UNKNOWN_SCHEMA_ID + b"body", b"poison")
    assert remote.flush(30) == 0
    # the Airflow row: a failed run and a failed task of a DAG of the test's own, beside the stack's scheduler
    if "STATSD_HOST" not in env:
        pytest.fail("the local stack exported no STATSD_HOST: run `freightline up` to start its statsd_exporter")
    statsd = metrics_environment(env["STATSD_HOST"], int(env["STATSD_PORT"]))
    services = [service.start() for service in _services(env, prefix, tmp_path, unique_name)]
    job_id = _flink_job(env, prefix, unique_name)
    try:
        # sent while the test waits for the panels' data
        with sending_airflow_metrics({"AIRFLOW_HOME": str(tmp_path / "airflow"), **statsd}, unique_name("dash_dag")):
            yield services
    finally:
        flink_jobs.cancel(env["FLINK_REST_URL"], job_id)
        codes = {service.module: service.stop() for service in services}
    assert codes == dict.fromkeys(codes, 0), f"services did not stop cleanly (logs in {tmp_path})"


def _flink_job(env: dict[str, str], prefix: str, unique_name: Callable[[str], str]) -> str:
    """The product views window job on the mirrored product views of this test, with its own topics, table and
    group (checkpoints every second): the Flink jobs dashboard's job-scoped panels have a job to show."""
    spec = flink_jobs.job("product_views")
    source = prefix + topic_names.PRODUCT_VIEWS
    sink, late = prefix + topic_names.AGGREGATES_PRODUCT_VIEWS, prefix + topic_names.LATE_EVENTS
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(sink, 1, {}), (late, 1, {})])
    wait_for_topic(env, source)
    settings = {
        "SOURCE_TOPIC": source,
        "SINK_TOPIC": sink,
        "LATE_TOPIC": late,
        "POSTGRES_TABLE": f"streaming.{unique_name('dash').replace('-', '_')}",
        "GROUP_ID": unique_name("dash-flink"),
        "CHECKPOINT_INTERVAL_MS": "1000",
        "IDLE_TIMEOUT_MS": "1000",
    }
    job_env = {**env, **{spec.settings_prefix + key: value for key, value in settings.items()}}
    return flink_jobs.submit(StackContext.create(StackSettings()), "product_views", env["FLINK_REST_URL"], job_env)


def _prometheus(env: dict[str, str], path: str, **params: Any) -> Any:
    response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/{path}", params=params, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def _empty_or_broken(env: dict[str, str], queries: list[Query]) -> dict[str, str]:
    """The queries that do not return data yet, with why (a parse error, or empty)."""
    failing = {}
    for query in queries:
        try:
            result = _prometheus(env, "query", query=query.resolved())["result"]
        except ValueError as error:
            failing[str(query)] = f"{error} in {query.resolved()}"
            continue
        if not result:
            failing[str(query)] = f"no data: {query.resolved()}"
    return failing


def test_every_panel_query_returns_live_data_and_names_only_scraped_metrics(
    monitored_env: dict[str, str], running_platform: list[ServiceProcess]
) -> None:
    queries = prometheus_queries()
    assert len(queries) > 50
    deadline = time.monotonic() + HANG_GUARD_S
    pending = queries
    while True:
        failing = _empty_or_broken(monitored_env, pending)
        assert not any(": no data" not in reason and "bad_data" in reason for reason in failing.values()), failing
        pending = [query for query in pending if str(query) in failing]
        dead = [service.module for service in running_platform if not service.alive()]
        if not pending or dead or time.monotonic() > deadline:
            break
        time.sleep(5)
    print(f"every query answered or gave up after {HANG_GUARD_S - (deadline - time.monotonic()):.0f}s")
    assert dead == [], f"services exited early: {dead}"
    assert failing == {}, f"{len(failing)} of {len(queries)} queries without live data:\n" + "\n".join(
        f"{name}: {reason}" for name, reason in sorted(failing.items())
    )

    # Every metric a dashboard names is one Prometheus scraped (and in the catalogue, checked by the unit tests).
    scraped = set(_prometheus(monitored_env, "label/__name__/values"))
    known, histograms = known_families()
    named = {series for query in queries for series in metric_names(query.text)}
    assert sorted(named - scraped - PROMETHEUS_OWN) == [], "metrics the dashboards query but no service exposes"
    assert {family_of(s, histograms) for s in named} - PROMETHEUS_OWN <= known

    # Every variable offers values.
    for dashboard, name, selector, label in variable_queries():
        match = re.sub(r"\$(service|topic)", GRAFANA_VARIABLES["$service"], selector)
        values = {series.get(label) for series in _prometheus(monitored_env, "series", **{"match[]": match})}
        assert values - {None}, f"{dashboard}: variable {name} ({selector}) has no values"
