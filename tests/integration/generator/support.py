"""Test support for the generator and mirror integration tests: reading topics back."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition


def read_topic(config: dict[str, Any], topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record of ``topic`` up to its current end, partition by partition in offset order."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        ends: dict[int, int] = {}
        assignment = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        messages: list[Message] = []
        positions = {tp.partition: tp.offset for tp in assignment}
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: at {positions}, want {ends}")
            for message in consumer.consume(10_000, 1.0):
                if message.error() is not None:
                    continue
                messages.append(message)
                positions[message.partition() or 0] = (message.offset() or 0) + 1
        messages.sort(key=lambda m: (m.partition(), m.offset()))
        return messages
    finally:
        consumer.close()


def topic_size(config: dict[str, Any], topic: str) -> int:
    """Records currently in ``topic`` (sum of high minus low watermarks); 0 when it does not exist."""
    consumer = Consumer({**config, "group.id": f"size-{uuid.uuid4().hex}"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return 0
        total = 0
        for partition in metadata.partitions:
            for attempt in range(20):
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                    break
                except KafkaException:  # a new partition without a leader yet
                    if attempt == 19:
                        raise
                    time.sleep(0.25)
            total += high - low
        return total
    finally:
        consumer.close()


def wait_for(condition: Any, timeout: float, message: str, interval: float = 0.5) -> None:
    """Poll ``condition`` until it is true; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)
