"""What the shared consumer loop reports per batch and commit, against the real broker: ingest age (record
timestamp to durable), consumer lag per group and partition, and the time of the last successful commit."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Message
from confluent_kafka import Producer as RawProducer

from services.common.kafka import ConsumerLoop, consumer_config
from services.common.lifecycle import Shutdown
from services.common.metrics import ServiceMetrics
from services.common.settings import KafkaSettings

pytestmark = pytest.mark.integration

AGE_S = 30.0  # the records' timestamps are this far in the past


def test_the_loop_reports_ingest_age_lag_per_group_and_the_last_commit(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic, group, total = new_topic("ingest-age", 2), unique_name("group"), 1000
    producer = RawProducer(kafka.client_config())
    stamp = int((time.time() - AGE_S) * 1000)
    for i in range(total):
        producer.produce(topic, b"x", str(i).encode(), timestamp=stamp)
    assert producer.flush(30) == 0

    shutdown, seen = Shutdown(), [0]

    def handle(batch: list[Message]) -> None:
        seen[0] += len(batch)
        if seen[0] >= total:
            shutdown.request("done")

    metrics = ServiceMetrics("test")
    started = time.time()
    loop = ConsumerLoop(
        consumer_config(kafka, group, "test"),
        [topic],
        handle,
        shutdown=shutdown,
        metrics=metrics,
        batch_size=200,
        lag_interval_s=0,
    )
    loop.run()
    assert seen[0] == total

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"service": "test", **labels})

    # every batch fed a sample of its records (at most 2 * AGE_SAMPLE each), all at least AGE_S old
    count = sample("freightline_ingest_age_seconds_count", topic=topic)
    assert count is not None and 0 < count <= total
    total_age = sample("freightline_ingest_age_seconds_sum", topic=topic)
    assert total_age is not None and total_age / count >= AGE_S
    assert sample("freightline_ingest_age_seconds_bucket", topic=topic, le="0.02") == 0  # the 20 ms edge exists
    assert sample("freightline_ingest_age_seconds_bucket", topic=topic, le="60.0") == count
    # lag per group and partition, caught up
    lags = [sample("freightline_consumer_lag_records", group=group, topic=topic, partition=str(p)) for p in (0, 1)]
    assert lags == [0, 0]
    last = sample("freightline_last_commit_timestamp_seconds", group=group)
    assert last is not None and last >= started
