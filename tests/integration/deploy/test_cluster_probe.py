"""The main job's lag and end-offset probe against the real local cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from deploy.processes import ClusterProbe

pytestmark = pytest.mark.integration


def test_end_offsets_and_group_lag(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = new_topic(partitions=2)
    config = {"bootstrap.servers": kafka_bootstrap}
    producer = Producer(config)
    for i in range(10):
        producer.produce(topic, b"x", partition=i % 2)
    assert producer.flush(30) == 0
    group = unique_name("probe-group")
    probe = ClusterProbe(config)
    assert probe.end_offsets([topic, "no-such-topic"]) == {topic: 10, "no-such-topic": 0}
    assert probe.group_lag(group, [topic]) == 10  # nothing committed yet

    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 1)], asynchronous=False)
    finally:
        consumer.close()
    assert probe.group_lag(group, [topic]) == 10 - 3 - 1
    assert probe.group_lag(group, ["no-such-topic"]) == 0
