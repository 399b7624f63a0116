"""The runner in process against the real brokers and registry: delivery accounting and the metrics it feeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from services.common.kafka import DeliveryError, Producer, producer_config
from services.common.metrics import ServiceMetrics
from services.common.serde import registry_client
from services.common.settings import KafkaSettings, RemoteKafkaSettings, SchemaRegistrySettings
from services.generator.records import ALL_TOPICS, ANOMALY_LABELS
from services.generator.runner import GeneratorRunner
from services.generator.settings import GeneratorSettings
from tests.integration.registry import free_port

pytestmark = pytest.mark.integration


def _produced(metrics: ServiceMetrics, topic: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "freightline_records_produced_total", {"service": metrics.service, "topic": topic, "outcome": outcome}
    )
    return value or 0.0


def _local_runner(
    stack_env: dict[str, str], registry_url: str, settings: GeneratorSettings, metrics: ServiceMetrics
) -> GeneratorRunner:
    """Every family on the local broker: the remote one needs SASL credentials these tests do not handle."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    return GeneratorRunner(
        settings,
        KafkaSettings(bootstrap_servers=bootstrap),
        RemoteKafkaSettings(bootstrap_servers=bootstrap, security_protocol="PLAINTEXT"),
        registry_client(SchemaRegistrySettings(url=registry_url)),
        metrics=metrics,
    )


def test_unpaced_run_counts_every_acknowledged_record_per_topic(
    stack_env: dict[str, str], generator_registry_url: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("genrun") + "."
    settings = GeneratorSettings(
        topic_prefix=prefix,
        pace=False,
        seed=5,
        products=60,
        customers=150,
        suppliers=8,
        devices=300,
        anomalies_per_minute=30.0,
        max_lateness_s=2.0,
        step_s=3.0,
    )
    metrics = ServiceMetrics("generator")
    runner = _local_runner(stack_env, generator_registry_url, settings, metrics)
    summary = runner.run(events=5_000)
    assert summary.events == 5_000 and summary.stopped_by == "events"
    assert summary.records == sum(summary.topics.values())
    assert summary.records >= 5_000 + 5 + 8 + 8 + 60 + 150  # events, reference snapshot (labels on top)
    assert prefix + ANOMALY_LABELS in summary.topics
    for name in ALL_TOPICS:
        topic = prefix + name
        count = summary.topics.get(topic, 0)
        assert _produced(metrics, topic, "ok") == count, topic
        assert _produced(metrics, topic, "error") == 0, topic
        events = metrics.registry.get_sample_value("freightline_generator_events_total", {"topic": name})
        assert (events or 0) == count, name


def test_a_paced_run_counts_deliveries_while_it_runs(
    stack_env: dict[str, str], generator_registry_url: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("genpace") + "."
    settings = GeneratorSettings(
        topic_prefix=prefix, pace=True, products=60, customers=150, suppliers=8, devices=300, reference_snapshot=False
    )
    metrics = ServiceMetrics("generator")
    runner = _local_runner(stack_env, generator_registry_url, settings, metrics)
    runner.setup()
    topic = prefix + "web.clickstream.v1"
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(runner.run(duration_s=20.0)))
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while _produced(metrics, topic, "ok") == 0 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert thread.is_alive() and _produced(metrics, topic, "ok") > 0, "deliveries counted before the end"
    finally:
        thread.join(60)
    (summary,) = result
    assert _produced(metrics, topic, "ok") == summary.topics[topic]


def test_undelivered_records_fail_the_flush_and_count_as_errors() -> None:
    metrics = ServiceMetrics("generator")
    nobody = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    config = producer_config(nobody, "generator-test", **{"delivery.timeout.ms": 1_500, "request.timeout.ms": 1_000})
    producer = Producer(config, metrics, report_successes=False)
    send = producer.sender("nowhere")
    for n in range(10):
        send(b"value", f"key-{n}", 1_767_225_600_000 + n)
    with pytest.raises(DeliveryError, match="10 deliveries failed"):
        producer.flush(30.0)
    assert _produced(metrics, "nowhere", "error") == 10
    assert _produced(metrics, "nowhere", "ok") == 0
    producer.flush(5.0)  # the failures were reported once: a second flush neither raises nor counts them again
    assert _produced(metrics, "nowhere", "error") == 10
