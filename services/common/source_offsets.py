"""Exactly-once copying between two clusters: the source positions live on the destination cluster, written in the
same Kafka transaction as the copied records (what MirrorMaker 2's exactly-once source does, KIP-618).

A consumer of one cluster cannot commit its offsets inside a transaction of another cluster's producer
(``send_offsets_to_transaction`` writes to the consumer group's coordinator, which lives on the source cluster). So
each batch's transaction on the destination holds the copied records *and* one ``SourceOffset`` record per source
partition (the next offset to copy) on a compacted topic; both become visible together or not at all. At partition
assignment the positions are read back ``read_committed`` and the source consumer starts there; the source group's
own offsets are still committed after each transaction, but only for lag monitoring and tooling.

The producer's ``transactional.id`` is fixed per instance: ``init_transactions`` at start fences the instance's
previous incarnation (a process killed mid-batch, or a zombie still running) and aborts its open transaction, so
what it copied without its positions never becomes visible to ``read_committed`` consumers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import Retrying, stop_after_delay, wait_exponential

from services.common.kafka import Producer
from services.common.serde import AvroSerde, Encoder, subject_for
from services.common.settings import KafkaSettings

log = logging.getLogger(__name__)


def position_key(group: str, topic: str, partition: int) -> str:
    return f"{group}/{topic}/{partition}"


class SourceOffsets:
    """The positions of consumer group ``group`` of the source cluster, kept on ``topic`` of the destination cluster
    (``com.freightline.mirror.SourceOffset`` records keyed by ``<group>/<topic>/<partition>``)."""

    def __init__(
        self,
        destination: KafkaSettings,
        serde: AvroSerde,
        group: str,
        topic: str,
        schema: dict[str, Any],
        *,
        read_timeout_s: float = 120.0,
    ) -> None:
        self.destination = destination
        self.serde = serde
        self.group = group
        self.topic = topic
        self.encoder: Encoder = serde.encoder(subject_for(topic), schema)
        self.read_timeout_s = read_timeout_s

    def records(self, offsets: Iterable[TopicPartition]) -> list[tuple[str, bytes]]:
        """(key, value) of the position records of ``offsets`` (each the next offset to copy)."""
        now = datetime.now(UTC)
        out = []
        for tp in offsets:
            key = position_key(self.group, tp.topic, tp.partition)
            value = {
                "position_key": key,
                "group_id": self.group,
                "source_topic": tp.topic,
                "source_partition": tp.partition,
                "next_offset": tp.offset,
                "written_at": now,
            }
            out.append((key, self.encoder.encode(value)))
        return out

    def read(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The committed positions of ``partitions`` (those never written are absent): the topic read
        ``read_committed`` up to its end as of now, the latest record of each key winning. An open transaction of
        another instance is waited for (the read cannot pass it); this instance's own was aborted or committed by
        ``init_transactions``."""
        wanted = {position_key(self.group, t, p): (t, p) for t, p in partitions}
        if not wanted:
            return {}
        consumer = Consumer(
            {
                **self.destination.client_config(),
                "group.id": f"{self.group}-positions-{uuid.uuid4().hex[:8]}",  # never commits: no group state
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )
        found: dict[tuple[str, int], int] = {}
        try:
            metadata = consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
            if metadata is None or metadata.error is not None:
                return found
            watermarks = consumer.get_watermark_offsets
            ends = {p: watermarks(TopicPartition(self.topic, p), timeout=30) for p in metadata.partitions}
            open_ = {p for p, (low, high) in ends.items() if high > low}
            consumer.assign([TopicPartition(self.topic, p, ends[p][0]) for p in open_])
            deadline = time.monotonic() + self.read_timeout_s
            while open_:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.topic}: positions not read within {self.read_timeout_s}s")
                message = consumer.poll(1.0)
                if message is None:
                    continue
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    # at the last stable offset: done once it reached the end seen at the start
                    if (message.offset() or 0) >= ends[partition][1]:
                        open_.discard(partition)
                    continue
                key = (message.key() or b"").decode()
                if key in wanted and message.value() is not None:
                    found[wanted[key]] = int(self.serde.decode(message.value())["next_offset"])
                if (message.offset() or 0) + 1 >= ends[partition][1]:
                    open_.discard(partition)
        finally:
            consumer.close()
        return found


class TransactionalCommits:
    """A consumer loop's exactly-once commit (``ConsumerLoop(transactions=...)``): each batch in one transaction of
    ``producer`` holding its outputs and its source positions (``offsets``), and the source consumer started at the
    positions read back at each assignment."""

    def __init__(
        self, producer: Producer, offsets: SourceOffsets, timeout_s: float = 60.0, read_retry_s: float = 300.0
    ) -> None:
        self.producer = producer
        self.offsets = offsets
        self.timeout_s = timeout_s
        self.read_retry_s = read_retry_s
        self._raw = producer.raw

    def start(self) -> None:
        """Fence the previous incarnation of this ``transactional.id`` (its open transaction is aborted)."""
        self._raw.init_transactions(self.timeout_s)

    def begin(self) -> None:
        self._raw.begin_transaction()

    def commit(self, next_offsets: list[TopicPartition]) -> None:
        """Write the batch's positions, wait for every record of it, commit the transaction."""
        for key, value in self.offsets.records(next_offsets):
            self.producer.produce(self.offsets.topic, value, key)
        self.producer.flush(self.timeout_s)
        self._raw.commit_transaction(self.timeout_s)

    def abort(self) -> None:
        """Abort the open transaction; a fatal error (this instance was fenced by a newer one) propagates."""
        try:
            self._raw.abort_transaction(self.timeout_s)
        except KafkaException as error:
            if error.args and isinstance(error.args[0], KafkaError) and error.args[0].fatal():
                raise
            log.warning("aborting the transaction failed: %s", error)

    def assignment(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """``partitions`` with their start offsets: the committed positions, else the group's (``OFFSET_INVALID``:
        the committed group offset, then ``auto.offset.reset``)."""
        for attempt in Retrying(
            wait=wait_exponential(multiplier=0.5, max=10),
            stop=stop_after_delay(self.read_retry_s),
            before_sleep=lambda state: log.warning("reading the source positions failed, retrying: %s", state.outcome),
            reraise=True,
        ):
            with attempt:  # the registry or the destination cluster may be down for a while
                found = self.offsets.read([(p.topic, p.partition) for p in partitions])
        log.info("source positions read for %d of %d partitions", len(found), len(partitions))
        return [
            TopicPartition(p.topic, p.partition, found.get((p.topic, p.partition), OFFSET_INVALID)) for p in partitions
        ]
