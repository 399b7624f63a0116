"""The shared producer, consumer loop, serde and dead letters against the real broker and registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from services.common.kafka import (
    ConsumerLoop,
    DeliveryError,
    Producer,
    consumer_config,
    end_positions,
    producer_config,
)
from services.common.lifecycle import Shutdown
from services.common.metrics import ServiceMetrics
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings

pytestmark = pytest.mark.integration

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Parcel",
    "namespace": "com.freightline.test",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "sku", "type": "string"},
        {"name": "weight_kg", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}


def parcel(i: int) -> dict[str, Any]:
    return {"id": i, "sku": f"SKU-{i % 977:05d}", "weight_kg": i / 10, "tags": ["fragile"] if i % 3 else []}


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def serde(registry_url: str) -> AvroSerde:
    return AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url)))


def produce(kafka: KafkaSettings, serde: AvroSerde, topic: str, ids: range) -> None:
    producer = Producer(producer_config(kafka, "test-producer"))
    encoder = serde.encoder(subject_for(topic), SCHEMA)
    for i in ids:
        producer.produce(topic, encoder.encode(parcel(i)), str(i))
    producer.flush()
    assert producer.delivered == len(ids)


def read_all(kafka: KafkaSettings, topic: str, expected: int = 0, timeout: float = 60) -> list[Message]:
    """Every record of ``topic`` up to its current end (waiting up to ``timeout`` for ``expected`` records)."""
    consumer = Consumer(consumer_config(kafka, f"reader-{time.time()}", "reader"))
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        while True:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
            if sum(ends.values()) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining and time.monotonic() < deadline + 30:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    messages.append(message)
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if offset + 1 >= ends[partition]:
                        remaining.discard(partition)
    finally:
        consumer.close()
    return messages


def committed(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer(consumer_config(kafka, group, "inspector"))
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets}


def test_hundred_thousand_records_none_lost_none_duplicated(
    kafka: KafkaSettings, serde: AvroSerde, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = new_topic("parcels", partitions=3)
    total = 100_000
    produce(kafka, serde, topic, range(total))

    seen: Counter[int] = Counter()
    shutdown = Shutdown()

    def handle(batch: list[Message]) -> None:
        for message in batch:
            seen[serde.decode(message.value())["id"]] += 1
        if sum(seen.values()) >= total:
            shutdown.request("done")

    group = unique_name("group")
    metrics = ServiceMetrics("test")
    loop = ConsumerLoop(
        consumer_config(kafka, group, "test"), [topic], handle, shutdown=shutdown, metrics=metrics, batch_size=2000
    )
    loop.run()
    assert len(seen) == total, f"lost {total - len(seen)}"
    assert max(seen.values()) == 1, f"duplicated {sum(c - 1 for c in seen.values())}"
    assert set(seen) == set(range(total))
    offsets = committed(kafka, group, topic, 3)
    assert sum(offsets.values()) == total
    assert b'freightline_offset_commits_total{outcome="ok",service="test"}' in metrics.render()


def test_failing_handler_rewinds_and_retries_without_commit(
    kafka: KafkaSettings, serde: AvroSerde, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = new_topic("flaky", partitions=1)
    produce(kafka, serde, topic, range(50))
    attempts = {"n": 0}
    seen: list[int] = []
    shutdown = Shutdown()

    def handle(batch: list[Message]) -> None:
        attempts["n"] += 1
        if attempts["n"] <= 2:
            raise ConnectionError("target unavailable")
        seen.extend(serde.decode(m.value())["id"] for m in batch)
        if len(seen) >= 50:
            shutdown.request()

    group = unique_name("group")
    loop = ConsumerLoop(consumer_config(kafka, group, "test"), [topic], handle, shutdown=shutdown, retry_backoff_s=0.05)
    loop.run()
    assert sorted(seen) == list(range(50))
    assert committed(kafka, group, topic, 1) == {0: 50}


def test_after_transactional_input_the_committed_offsets_reach_the_end_past_the_markers(
    kafka: KafkaSettings, serde: AvroSerde, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    """Each transaction ends with a commit marker after its last record (an aborted one with an abort marker):
    the loop commits past them once idle, so the group's lag is 0, not 1 per partition."""
    topic = new_topic("transactional", partitions=2)
    encoder = serde.encoder(subject_for(topic), SCHEMA)
    producer = KafkaProducer({**kafka.client_config(), "transactional.id": unique_name("tx")})
    producer.init_transactions(30)
    for n, ids in enumerate((range(0, 20), range(20, 40), range(40, 60), range(60, 70))):
        producer.begin_transaction()
        for i in ids:
            producer.produce(topic, encoder.encode(parcel(i)), str(i), partition=i % 2)
        if n == 2:
            producer.abort_transaction(30)  # its records are never handed to the loop (read_committed)
        else:
            producer.commit_transaction(30)
    seen: list[int] = []
    shutdown = Shutdown()
    guard = threading.Timer(60, shutdown.request, args=("hang guard",))
    partitions = [TopicPartition(topic, p) for p in range(2)]

    def caught_up(count: int) -> None:
        # a poll that returned nothing after every record: stop once the positions passed the last markers (the
        # loop then commits them in this same round)
        if count == 0 and len(seen) == 50:
            ends = [loop.consumer.get_watermark_offsets(tp, cached=True)[1] for tp in partitions]
            if [tp.offset for tp in loop.consumer.position(partitions)] == ends:
                shutdown.request("caught up")

    group = unique_name("group")
    loop = ConsumerLoop(
        consumer_config(kafka, group, "test"),
        [topic],
        lambda batch: seen.extend(serde.decode(m.value())["id"] for m in batch),
        shutdown=shutdown,
        on_poll=caught_up,
    )
    guard.start()
    try:
        loop.run()
    finally:
        guard.cancel()
    assert shutdown.reason == "caught up"
    assert sorted(seen) == [*range(40), *range(60, 70)]
    ends = end_positions({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}, [topic])[topic]
    assert committed(kafka, group, topic, 2) == ends  # lag 0


def _relay(env: dict[str, str], **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.common.relay_app"],
        env={**os.environ, **env, **extra},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def relay_env(
    stack_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        "SCHEMA_REGISTRY_URL": stack_env["SCHEMA_REGISTRY_URL"],
        "RELAY_INPUT": new_topic("relay-in", partitions=3),
        "RELAY_OUTPUT": new_topic("relay-out", partitions=3),
        "RELAY_GROUP": unique_name("relay"),
    }


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_sigkill_mid_stream_then_restart_processes_everything_and_never_commits_ahead(
    kafka: KafkaSettings,
    serde: AvroSerde,
    relay_env: dict[str, str],
    reaper: list[subprocess.Popen[bytes]],
) -> None:
    total = 20_000
    produce(kafka, serde, relay_env["RELAY_INPUT"], range(total))
    inputs = {  # (partition, offset) -> id
        (m.partition() or 0, m.offset() or 0): serde.decode(m.value())["id"]
        for m in read_all(kafka, relay_env["RELAY_INPUT"], total)
    }
    first = _relay(relay_env, RELAY_BATCH_DELAY_S="0.05")
    reaper.append(first)
    group, source = relay_env["RELAY_GROUP"], relay_env["RELAY_INPUT"]
    _wait_for(
        lambda: sum(max(o, 0) for o in committed(kafka, group, source, 3).values()) > 3000,
        120,
        "the relay to commit a few thousand records",
    )
    first.send_signal(signal.SIGKILL)
    first.wait()

    # Never committed ahead: every input below a committed offset has its output.
    offsets_at_crash = committed(kafka, relay_env["RELAY_GROUP"], relay_env["RELAY_INPUT"], 3)
    assert 0 < sum(max(o, 0) for o in offsets_at_crash.values()) < total
    out_ids = {serde.decode(m.value())["id"] for m in read_all(kafka, relay_env["RELAY_OUTPUT"])}
    must_have = {i for (p, o), i in inputs.items() if o < offsets_at_crash[p]}
    assert must_have <= out_ids, f"{len(must_have - out_ids)} committed records have no output"

    second = _relay(relay_env)
    reaper.append(second)
    _wait_for(
        lambda: sum(committed(kafka, relay_env["RELAY_GROUP"], relay_env["RELAY_INPUT"], 3).values()) == total,
        180,
        "the restarted relay to commit everything",
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0, second.stderr.read().decode() if second.stderr else ""

    outputs = read_all(kafka, relay_env["RELAY_OUTPUT"], total)
    counts = Counter(serde.decode(m.value())["id"] for m in outputs)
    lost = total - len(counts)
    duplicates = sum(c - 1 for c in counts.values())
    print(f"sigkill relay: {total} in, {len(outputs)} out, lost={lost}, duplicates={duplicates}")
    assert lost == 0
    assert set(counts) == set(range(total))
    # At-least-once: duplicates only from the batch in flight when the process was killed.
    assert duplicates <= 3 * 200


def test_undecodable_record_goes_to_dead_letters_and_the_stream_goes_on(
    kafka: KafkaSettings,
    serde: AvroSerde,
    relay_env: dict[str, str],
    reaper: list[subprocess.Popen[bytes]],
) -> None:
    topic = relay_env["RELAY_INPUT"]
    producer = Producer(producer_config(kafka, "test"))
    encoder = serde.encoder(subject_for(topic), SCHEMA)
    garbage = b"\x00\xff\xff\xff\xfe garbage"
    producer.produce(topic, encoder.encode(parcel(1)), "1", partition=0)
    producer.produce(topic, garbage, "bad", partition=0, headers=[("origin", b"test")])
    producer.produce(topic, b"plain text, no header", "worse", partition=0)
    producer.produce(topic, encoder.encode(parcel(2)), "2", partition=0)
    producer.flush()

    relay = _relay(relay_env)
    reaper.append(relay)
    dlq = f"{topic}.dlq"
    _wait_for(
        lambda: sum(max(o, 0) for o in committed(kafka, relay_env["RELAY_GROUP"], topic, 3).values()) == 4,
        60,
        "the relay to get past the poison records",
    )
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(60) == 0

    outputs = read_all(kafka, relay_env["RELAY_OUTPUT"], 2)
    assert sorted(serde.decode(m.value())["id"] for m in outputs) == [1, 2]
    letters = [serde.decode(m.value()) for m in read_all(kafka, dlq, 2)]
    assert len(letters) == 2
    by_key = {letter["original_key"]: letter for letter in letters}
    bad = by_key[b"bad"]
    assert bad["original_value"] == garbage
    assert bad["source_topic"] == topic and bad["source_partition"] == 0 and bad["source_offset"] == 1
    assert bad["error_type"] == "unknown_schema"
    assert {"key": "origin", "value": b"test"} in bad["original_headers"]
    assert bad["service"] == "relay"
    assert by_key[b"worse"]["error_type"] == "undecodable"
    assert by_key[b"worse"]["original_value"] == b"plain text, no header"


@pytest.mark.parametrize("report_successes", [True, False])
def test_producer_counts_deliveries_and_failures(
    kafka: KafkaSettings, new_topic: Callable[..., str], report_successes: bool
) -> None:
    topic = new_topic("counted", partitions=1)
    small = new_topic("small", partitions=1, **{"max.message.bytes": "2048"})
    metrics = ServiceMetrics("test")
    producer = Producer(producer_config(kafka, "test"), metrics, report_successes=report_successes)
    for i in range(500):
        producer.produce(topic, b"v", str(i))
    producer.flush()
    assert producer.delivered == 500 and producer.in_flight == 0
    producer.produce(small, os.urandom(8192), "big")  # the broker refuses it: a failed delivery report
    with pytest.raises(DeliveryError, match="1 deliveries failed"):
        producer.flush(30)
    assert producer.delivered == 500
    rendered = metrics.render().decode()
    assert f'freightline_records_produced_total{{outcome="ok",service="test",topic="{topic}"}} 500.0' in rendered
    assert f'freightline_records_produced_total{{outcome="error",service="test",topic="{small}"}} 1.0' in rendered
    if not report_successes:
        with pytest.raises(ValueError, match="report_successes=True"):
            producer.produce(topic, b"v", "k", on_delivery=lambda error, message: None)
