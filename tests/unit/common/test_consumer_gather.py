"""A batch being gathered when partitions are revoked drops their records (their new owner reads them from the
committed offset), whichever poll of the gathering served the revocation. The Kafka consumer is replaced by a
scripted one: what is tested is the loop's own bookkeeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from confluent_kafka import TopicPartition

from services.common.kafka import ConsumerLoop
from services.common.lifecycle import Shutdown

TOPIC = "t"


@dataclass(frozen=True)
class Record:
    part: int
    at: int

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.at

    def error(self) -> None:
        return None


class ScriptedConsumer:
    """Each poll or consume call runs the next step of the script: a list of records to return, or a callable
    (a rebalance callback served by that call) returning them."""

    def __init__(self, steps: list[list[Record] | Callable[[], list[Record]]]) -> None:
        self.steps = steps

    def _next(self) -> list[Record]:
        if not self.steps:
            return []
        step = self.steps.pop(0)
        return step() if callable(step) else step

    def poll(self, timeout: float) -> Record | None:
        records = self._next()
        assert len(records) <= 1
        return records[0] if records else None

    def consume(self, count: int, timeout: float) -> list[Record]:
        return self._next()

    def close(self) -> None:
        return None


@pytest.fixture
def loop() -> ConsumerLoop:
    consumer_loop = ConsumerLoop(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "g"},
        [TOPIC],
        lambda batch: None,
        shutdown=Shutdown(),
        batch_size=100,
        batch_timeout_s=60.0,
        batch_idle_s=0.0,
    )
    consumer_loop.consumer.close()
    consumer_loop.assignment = {(TOPIC, 0), (TOPIC, 1)}
    return consumer_loop


def revoke(loop: ConsumerLoop, partition: int, then: list[Record]) -> Callable[[], list[Record]]:
    def step() -> list[Record]:
        loop._on_revoke(loop.consumer, [TopicPartition(TOPIC, partition)])  # type: ignore[arg-type]
        return then

    return step


def gathered(loop: ConsumerLoop, steps: list[list[Record] | Callable[[], list[Record]]]) -> list[tuple[int, int]]:
    loop.consumer = ScriptedConsumer(steps)  # type: ignore[assignment]
    return [(m.partition() or 0, m.offset() or 0) for m in loop._gather()]


def test_records_of_a_partition_revoked_while_gathering_are_dropped(loop: ConsumerLoop) -> None:
    steps: list[list[Record] | Callable[[], list[Record]]] = [
        [Record(0, 10)],
        [Record(1, 20), Record(0, 11)],
        revoke(loop, 0, [Record(1, 21)]),
        [Record(1, 22)],
    ]
    assert gathered(loop, steps) == [(1, 20), (1, 21), (1, 22)]


def test_a_revocation_served_by_a_poll_that_brought_nothing_still_drops(loop: ConsumerLoop) -> None:
    steps: list[list[Record] | Callable[[], list[Record]]] = [[Record(0, 10)], [Record(1, 20)], revoke(loop, 0, [])]
    assert gathered(loop, steps) == [(1, 20)]


def test_records_fetched_after_a_partition_came_back_are_kept(loop: ConsumerLoop) -> None:
    def reassign() -> list[Record]:
        loop._on_assign(loop.consumer, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
        return [Record(0, 10)]  # read again from the committed offset

    steps: list[list[Record] | Callable[[], list[Record]]] = [
        [Record(0, 10)],
        revoke(loop, 0, [Record(1, 20)]),
        reassign,
        [Record(0, 11)],
    ]
    assert gathered(loop, steps) == [(1, 20), (0, 10), (0, 11)]


def test_a_revocation_before_the_batch_began_drops_nothing(loop: ConsumerLoop) -> None:
    loop._on_revoke(loop.consumer, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
    loop._on_assign(loop.consumer, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
    assert gathered(loop, [[Record(0, 10)], [Record(0, 11)]]) == [(0, 10), (0, 11)]
