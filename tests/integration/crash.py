"""What every SIGKILL test proves, in one place: the kill hit work in flight (the consumer group had uncommitted
records at that moment), and after the restart the output holds every input id, with duplicates counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def group_lag(client_config: Mapping[str, Any], group: str, topics: Iterable[str]) -> int:
    """Records of ``topics`` the consumer group has not committed yet (committed offsets against end offsets),
    read without joining the group."""
    consumer = Consumer({**client_config, "group.id": group})
    try:
        lag = 0
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
            for tp in committed:
                low, high = consumer.get_watermark_offsets(tp, timeout=30)
                lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    finally:
        consumer.close()


def kill_in_flight(
    kill: Callable[[], object], client_config: Mapping[str, Any], group: str, topics: Iterable[str]
) -> int:
    """Run ``kill`` (a SIGKILL that waits for the process to end) and return the group's lag at that moment; the
    crash tests assert it is above zero, so the kill is known to have hit uncommitted records, not a drained
    consumer."""
    kill()
    return group_lag(client_config, group, topics)


@dataclass(frozen=True)
class IdTally:
    """Output ids against input ids, as multisets: missing inputs, ids nobody produced, repeated outputs."""

    inputs: int
    outputs: int
    missing: int
    unexpected: int
    duplicates: int


def tally(inputs: Iterable[str], outputs: Iterable[str]) -> IdTally:
    wanted, got = Counter(inputs), Counter(outputs)
    assert max(wanted.values(), default=1) == 1, "the input ids must be unique"
    return IdTally(
        inputs=sum(wanted.values()),
        outputs=sum(got.values()),
        missing=len(wanted.keys() - got.keys()),
        unexpected=len(got.keys() - wanted.keys()),
        duplicates=sum(n - 1 for n in got.values()),
    )
