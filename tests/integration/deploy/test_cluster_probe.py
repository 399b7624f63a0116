"""The main job's lag and end-offset probe against the real local cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from deploy.processes import ClusterProbe, group_behind, readable_ends

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


def test_readable_ends_stop_before_transaction_markers(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    """A Java consumer (Flink's source) commits just past the last record it read, never past a commit marker: the
    main job waits for that position, which the high watermark overshoots on a transactional topic."""
    topic = new_topic(partitions=2)
    config = {"bootstrap.servers": kafka_bootstrap}
    producer = Producer({**config, "transactional.id": unique_name("probe-txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(6):
        producer.produce(topic, b"kept", partition=i % 2)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", partition=0)
    producer.flush(30)
    producer.abort_transaction(30)
    ends = readable_ends(config, [topic])
    assert ends == {(topic, 0): 3, (topic, 1): 3}  # records 0-2 each; then a marker (and on 0 an aborted record)
    assert ClusterProbe(config).end_offsets([topic]) == {topic: 4 + 6}  # the high watermarks count them all

    group = unique_name("probe-group")
    assert group_behind(config, group, ends) == 6
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 3)], asynchronous=False)
    finally:
        consumer.close()
    assert group_behind(config, group, ends) == 0
