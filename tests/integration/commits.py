"""Every offset a consumer group committed, in the order the broker took them, read from ``__consumer_offsets``
(the group coordinator's own log), and the members of a group with their assignments.

Sampling the committed offsets now and then can miss a commit that went back or repeated one; the log has all of
them. Records of ``__consumer_offsets`` (Kafka's internal format, versions 0 and 1 of the offset-commit key): the
key is ``int16 version, string group, string topic, int32 partition``, the value starts with ``int16 version,
int64 offset`` (a null value is a deletion). A group's records live in partition ``hash(group) % partitions``
(Java's ``String.hashCode``).
"""

from __future__ import annotations

import struct
import uuid
from collections import defaultdict
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

OFFSETS_TOPIC = "__consumer_offsets"


def _java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units, as a signed 32-bit int)."""
    encoded = text.encode("utf-16-be")
    value = 0
    for unit in struct.unpack(f">{len(encoded) // 2}H", encoded):
        value = (31 * value + unit) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _string(data: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", data, at)
    return data[at + 2 : at + 2 + length].decode(), at + 2 + length


def commit_log(client_config: Mapping[str, Any], group: str, topic: str) -> dict[int, list[int]]:
    """Per partition of ``topic``: every offset ``group`` committed, oldest first (up to the log's current end)."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"commit-log-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = len(consumer.list_topics(OFFSETS_TOPIC, timeout=30).topics[OFFSETS_TOPIC].partitions)
        partition = abs(_java_hash(group)) % partitions  # Kafka's Utils.abs (MIN_VALUE -> 0: out of reach here)
        low, high = consumer.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, partition), timeout=30)
        commits: dict[int, list[int]] = defaultdict(list)
        if high <= low:
            return commits
        consumer.assign([TopicPartition(OFFSETS_TOPIC, partition, low)])
        position = low
        while position < high:
            message = consumer.poll(30)
            if message is None:
                raise AssertionError(f"{OFFSETS_TOPIC}[{partition}] stopped at {position} before {high}")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError(error)
            position = (message.offset() or 0) + 1
            key, value = message.key(), message.value()
            if not key or value is None or struct.unpack_from(">h", key, 0)[0] not in (0, 1):
                continue
            committed_group, at = _string(key, 2)
            committed_topic, at = _string(key, at)
            if committed_group != group or committed_topic != topic:
                continue
            (topic_partition,) = struct.unpack_from(">i", key, at)
            (offset,) = struct.unpack_from(">q", value, 2)
            commits[topic_partition].append(offset)
        return commits
    finally:
        consumer.close()


def group_assignments(client_config: Mapping[str, Any], group: str) -> dict[str, list[tuple[str, int]]]:
    """The group's members (by client id and member id) and the partitions each one holds now."""
    admin = AdminClient(dict(client_config))
    description = admin.describe_consumer_groups([group], request_timeout=30)[group].result(60)
    return {
        f"{member.client_id}/{member.member_id}": sorted(
            (tp.topic, tp.partition) for tp in (member.assignment.topic_partitions if member.assignment else [])
        )
        for member in description.members
    }


def not_forward(commits: Mapping[int, list[int]]) -> dict[int, list[tuple[int, int]]]:
    """Per partition, the pairs of successive commits that did not move forward (a range committed twice, or a
    commit that went back); empty when every commit moved forward."""
    found = {p: [(a, b) for a, b in pairwise(offsets) if b <= a] for p, offsets in commits.items()}
    return {p: pairs for p, pairs in found.items() if pairs}
