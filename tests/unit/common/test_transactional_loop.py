"""The consumer loop's exactly-once mode (``transactions=``): a batch is handled inside a transaction that commits
with the batch's next offsets, or aborts when the handler fails (the batch is then rewound, its group offsets not
committed); assigned partitions start at the positions the transactions give. The Kafka consumer and the
transactions are scripted: what is tested is the loop's own sequencing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from services.common.kafka import ConsumerLoop
from services.common.lifecycle import Shutdown
from tests.unit.common.test_consumer_gather import TOPIC, Record


@dataclass
class ScriptedTransactions:
    calls: list[Any] = field(default_factory=list)

    def begin(self) -> None:
        self.calls.append("begin")

    def commit(self, next_offsets: list[TopicPartition]) -> None:
        self.calls.append(("commit", sorted((tp.partition, tp.offset) for tp in next_offsets)))

    def abort(self) -> None:
        self.calls.append("abort")

    def assignment(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(p.topic, p.partition, 100 + p.partition) for p in partitions]


@dataclass
class ScriptedConsumer:
    calls: list[Any] = field(default_factory=list)

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.calls.append(("group commit", sorted((tp.partition, tp.offset) for tp in offsets)))

    def seek(self, tp: TopicPartition) -> None:
        self.calls.append(("seek", tp.partition, tp.offset))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", sorted((tp.partition, tp.offset) for tp in partitions)))


def loop_with(handler: Any) -> tuple[ConsumerLoop, ScriptedTransactions, ScriptedConsumer]:
    transactions = ScriptedTransactions()
    loop = ConsumerLoop(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "partition.assignment.strategy": "cooperative-sticky"},
        [TOPIC],
        handler,
        shutdown=Shutdown(),
        retry_backoff_s=0.0,
        transactions=transactions,  # type: ignore[arg-type]
    )
    loop.consumer.close()
    consumer = ScriptedConsumer()
    loop.consumer = consumer  # type: ignore[assignment]
    loop.assignment = {(TOPIC, 0), (TOPIC, 1)}
    return loop, transactions, consumer


def test_a_batch_commits_its_transaction_with_its_next_offsets_then_the_group() -> None:
    handled: list[int] = []
    loop, transactions, consumer = loop_with(lambda batch: handled.append(len(batch)))
    assert loop.process([Record(0, 10), Record(1, 20), Record(0, 11)])  # type: ignore[list-item]
    assert handled == [3]
    assert transactions.calls == ["begin", ("commit", [(0, 12), (1, 21)])]
    assert consumer.calls == [("group commit", [(0, 12), (1, 21)])]


def test_a_failing_batch_aborts_its_transaction_and_is_rewound_uncommitted() -> None:
    def fail(batch: Any) -> None:
        raise ValueError("target down")

    loop, transactions, consumer = loop_with(fail)
    assert not loop.process([Record(0, 10), Record(0, 11), Record(1, 20)])  # type: ignore[list-item]
    assert transactions.calls == ["begin", "abort"]
    assert sorted(consumer.calls) == [("seek", 0, 10), ("seek", 1, 20)]


def test_assigned_partitions_start_at_the_transactions_positions() -> None:
    loop, _transactions, consumer = loop_with(lambda batch: None)
    loop._on_assign(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)])  # type: ignore[arg-type]
    assert consumer.calls == [("assign", [(0, 100), (2, 102)])]


@pytest.mark.parametrize("strategy", ["range", "roundrobin"])
def test_an_eager_assignor_assigns_the_whole_set(strategy: str) -> None:
    transactions = ScriptedTransactions()
    loop = ConsumerLoop(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "partition.assignment.strategy": strategy},
        [TOPIC],
        lambda batch: None,
        shutdown=Shutdown(),
        transactions=transactions,  # type: ignore[arg-type]
    )
    loop.consumer.close()
    assigned: list[Any] = []

    class Eager:
        def assign(self, partitions: list[TopicPartition]) -> None:
            assigned.extend((tp.partition, tp.offset) for tp in partitions)

    loop._on_assign(Eager(), [TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    assert assigned == [(1, 101)]
