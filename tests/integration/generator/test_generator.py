"""The generator against the real brokers and registry: every topic written, read back decoded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from schemas.catalogue import load_catalogue
from services.common.serde import AvroSerde, registry_client, schema_id_of
from services.common.settings import SchemaRegistrySettings
from services.generator.records import ALL_TOPICS, ANOMALY_LABELS, PRODUCT_VIEWS
from services.generator.settings import GeneratorSettings
from tests.integration.generator.support import wait_for
from tests.integration.processes import read_topic, topic_size

pytestmark = pytest.mark.integration


def _env(stack_env: dict[str, str], registry_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **stack_env,
        "SCHEMA_REGISTRY_URL": registry_url,
        "GENERATOR_TOPIC_PREFIX": prefix,
        "GENERATOR_PRODUCTS": "80",
        "GENERATOR_CUSTOMERS": "200",
        "GENERATOR_SUPPLIERS": "10",
        "GENERATOR_DEVICES": "500",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _cluster_config(stack_env: dict[str, str], cluster: str) -> dict[str, Any]:
    if cluster == "remote":
        return {
            "bootstrap.servers": stack_env["REMOTE_KAFKA_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": stack_env["REMOTE_KAFKA_SASL_USERNAME"],
            "sasl.password": stack_env["REMOTE_KAFKA_SASL_PASSWORD"],
        }
    return {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}


def _summary(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no summary on stdout"
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def test_bounded_run_writes_every_topic_and_reads_back_decoded(
    stack_env: dict[str, str], generator_registry_url: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("gen") + "."
    env = _env(
        stack_env,
        generator_registry_url,
        prefix,
        GENERATOR_ANOMALIES_PER_MINUTE="20",
        GENERATOR_MAX_LATENESS_S="2",
        GENERATOR_STEP_S="3",
    )
    # Record timestamps are event times and retention goes by them: a recent start keeps the records.
    start = GeneratorSettings().backlog_start(6000, int(time.time() * 1000)).isoformat()
    result = subprocess.run(
        [sys.executable, "-m", "services.generator", "--events", "6000", "--no-pace", "--seed", "11", "--start", start],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = _summary(result.stdout)
    assert summary["events"] == 6000 and summary["stopped_by"] == "events"
    assert set(summary["topics"]) == {prefix + name for name in ALL_TOPICS}
    assert summary["anomalies_total"] == summary["topics"][prefix + ANOMALY_LABELS] > 0
    assert summary["scheduled_peak"] > 0  # the open orders' future records, which the chaos harness allows for

    catalogue = load_catalogue()
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=generator_registry_url)))
    event_ids: set[str] = set()
    labels: list[dict[str, Any]] = []
    for name in ALL_TOPICS:
        spec = catalogue.topic(name)
        topic = prefix + name
        config = _cluster_config(stack_env, spec.cluster)
        admin = AdminClient(config)
        metadata = admin.list_topics(topic, timeout=30).topics[topic]
        assert len(metadata.partitions) == spec.partitions, topic
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        assert configs["cleanup.policy"].value == spec.cleanup_policy
        if spec.retention_ms is not None:
            assert configs["retention.ms"].value == str(spec.retention_ms)

        messages = read_topic(config, topic)
        assert len(messages) == summary["topics"][topic], topic
        ids = {schema_id_of(m.value() or b"") for m in messages}
        assert len(ids) == 1, f"{topic}: one writer schema"
        for message in messages:
            record = serde.decode(message.value())
            assert (message.key() or b"").decode() == record[spec.key_field]
            assert message.timestamp()[1] == int(record["metadata"]["event_time"].timestamp() * 1000)
            assert record["metadata"]["ingest_time"] >= record["metadata"]["event_time"]
            if name == ANOMALY_LABELS:
                labels.append(record)
            else:
                event_ids.add(str(record["metadata"]["event_id"]))
    # Product views live on the remote cluster only.
    assert topic_size(_cluster_config(stack_env, "local"), prefix + PRODUCT_VIEWS) == 0
    # Every label points at events that were produced.
    for label in labels:
        assert set(label["event_ids"]) <= event_ids, label["anomaly_type"]


def test_sigterm_stops_a_paced_run_after_flushing_everything(
    stack_env: dict[str, str], generator_registry_url: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("gen") + "."
    env = _env(stack_env, generator_registry_url, prefix, GENERATOR_RATE_PRODUCT_VIEWS="300")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.generator", "--duration", "300"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        local = _cluster_config(stack_env, "local")
        wait_for(lambda: topic_size(local, prefix + "web.clickstream.v1") > 50, 120, "clickstream records arrive")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr[-3000:]
    summary = _summary(stdout)
    assert summary["stopped_by"] == "SIGTERM"
    counts = Counter(summary["topics"])
    for name in ALL_TOPICS:
        cluster = load_catalogue().topic(name).cluster
        assert topic_size(_cluster_config(stack_env, cluster), prefix + name) == counts[prefix + name], name
