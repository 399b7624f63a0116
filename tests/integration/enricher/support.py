"""Helpers shared by the enricher and detector integration tests and the enricher benchmark.

The generator runs as a subprocess on unique topics; its "remote" product views are pointed at the local cluster
(``REMOTE_KAFKA_*`` = the local PLAINTEXT cluster, ``GENERATOR_TOPICS`` maps ``product_views`` to the mirrored
name) so the tests need no mirror in between.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.common.kafka import read_topic
from services.common.serde import AvroSerde, SerdeError, registry_client
from services.common.settings import SchemaRegistrySettings
from services.enricher import join
from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS
from services.generator.settings import GeneratorSettings

ROOT = Path(__file__).resolve().parents[3]


def process_env(stack_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    env = {**os.environ, **stack_env, **overrides}
    env.setdefault("LOG_LEVEL", "WARNING")
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_generator(
    stack_env: Mapping[str, str], prefix: str, events: int, seed: int, **generator_env: str
) -> dict[str, Any]:
    """Run the generator once (all topics local, prefixed), its simulated time ending about now (topic retention
    goes by record timestamp); returns its JSON summary."""
    env = process_env(
        stack_env,
        REMOTE_KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        REMOTE_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
        GENERATOR_TOPICS=json.dumps({"product_views": f"{prefix}web.product_views.v1"}),
        **generator_env,
    )
    args = [sys.executable, "-m", "services.generator", "--events", str(events), "--no-pace", "--seed", str(seed)]
    start = GeneratorSettings().backlog_start(events, int(time.time() * 1000))
    args += ["--topic-prefix", prefix, "--start", start.isoformat()]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"generator failed ({done.returncode}): {done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def start_enricher(
    stack_env: Mapping[str, str], prefix: str, data_dir: Path, log_path: Path, **enricher_env: str
) -> subprocess.Popen[bytes]:
    env = process_env(
        stack_env,
        ENRICHER_TOPIC_PREFIX=prefix,
        ENRICHER_APP_ID=f"{prefix}enricher",
        ENRICHER_DATA_DIR=str(data_dir),
        **enricher_env,
    )
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.enricher"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout)


def topic_size(stack_env: Mapping[str, str], topics: Iterable[str]) -> int:
    """Records in ``topics`` (sum of high - low watermarks)."""
    consumer = Consumer({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": "size-probe"})
    total = 0
    try:
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None:
                continue
            for partition in metadata.partitions:
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                except KafkaException:  # a partition just created may have no leader yet
                    continue
                total += high - low
    finally:
        consumer.close()
    return total


def wait_for_size(
    stack_env: Mapping[str, str],
    topics: Iterable[str],
    expected: int,
    timeout: float = 180.0,
    process: subprocess.Popen[bytes] | None = None,
) -> int:
    """Wait until ``topics`` hold at least ``expected`` records (or time out); returns the final size."""
    names = list(topics)
    deadline = time.monotonic() + timeout
    size = topic_size(stack_env, names)
    while size < expected and time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before the outputs were complete")
        time.sleep(0.5)
        size = topic_size(stack_env, names)
    return size


def serde_for(stack_env: Mapping[str, str]) -> AvroSerde:
    return AvroSerde(registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"])))


def decoded(stack_env: Mapping[str, str], topic: str, serde: AvroSerde) -> list[dict[str, Any]]:
    return [serde.decode(value) for _key, value, _ts in read_topic(stack_env, topic)]


def decodable(stack_env: Mapping[str, str], topic: str, serde: AvroSerde) -> list[dict[str, Any]]:
    """Every record of ``topic`` that decodes (undecodable ones are the dead letters' business)."""
    records = []
    for _key, value, _ts in read_topic(stack_env, topic):
        try:
            records.append(serde.decode(value))
        except SerdeError:
            continue
    return records


def source_event_ids(stack_env: Mapping[str, str], prefix: str, serde: AvroSerde) -> list[str]:
    """The event id of every source record that decodes."""
    return [
        str(record["metadata"]["event_id"])
        for topic in source_topics(prefix).values()
        for record in decodable(stack_env, topic, serde)
    ]


def enriched_event_ids(stack_env: Mapping[str, str], prefix: str, serde: AvroSerde) -> list[str]:
    """The source event id of every enriched record, over every output topic (one entry per record)."""
    return [
        str(record["event"]["metadata"]["event_id"])
        for topic in output_topics(prefix).values()
        for record in decoded(stack_env, topic, serde)
    ]


def source_topics(prefix: str) -> dict[str, str]:
    return {kind: f"{prefix}{name}" for kind, name in SOURCE_TOPICS.items()}


def output_topics(prefix: str) -> dict[str, str]:
    return {kind: f"{prefix}{name}" for kind, name in OUTPUT_TOPICS.items()}


def expected_event_count(summary: Mapping[str, Any], prefix: str) -> int:
    topics = summary["topics"]
    return sum(int(topics.get(topic, 0)) for topic in source_topics(prefix).values())


def enriched_id(kind: str, source_event_id: str) -> str:
    return join.enriched_event_id(kind, source_event_id)


def group_caught_up(stack_env: Mapping[str, str], group: str, topics: Iterable[str]) -> bool:
    """True when ``group`` committed every partition of ``topics`` up to its end offset."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
    committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or []}
    consumer = Consumer({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": "lag-probe"})
    try:
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None:
                continue
            for partition in metadata.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > 0 and committed.get((topic, partition), -1) < high:
                    return False
    finally:
        consumer.close()
    return True


def wait_caught_up(
    stack_env: Mapping[str, str],
    group: str,
    topics: Iterable[str],
    timeout: float = 180.0,
    process: subprocess.Popen[bytes] | None = None,
) -> bool:
    names = list(topics)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            if group_caught_up(stack_env, group, names):
                return True
        except KafkaException:
            pass
        time.sleep(1.0)
    return False


def wait_assigned(stack_env: Mapping[str, str], group: str, members: int, partitions: int, timeout: float) -> bool:
    """Wait until ``group`` is stable with ``members`` members that hold ``partitions`` partitions in all."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:
            found = None
        if found is not None and found.state == ConsumerGroupState.STABLE and len(found.members) == members:
            held = sum(len(m.assignment.topic_partitions) for m in found.members if m.assignment is not None)
            if held == partitions:
                return True
        time.sleep(1.0)
    return False
