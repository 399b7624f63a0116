"""Inspecting and replaying dead letters (``freightline dlq list|show|replay``).

A dead-letter topic (``<source topic>.dlq``) holds ``DeadLetter`` envelopes (``services.common.deadletter``): the
original key, value and headers, where the record came from, why it failed and when. ``read_dead_letters`` reads
them back with their own place in the dead-letter topic; ``select`` filters them by reason, time of failure and
source partition/offset; ``replay`` re-publishes the original bytes, key and headers to the source topic (same
partition) or another topic.

Exactly once, by a ledger written in the same Kafka transaction as the replayed records: every replayed dead letter
gets a record keyed ``<partition>:<offset>`` (its place in the dead-letter topic) on the compacted topic
``<dead-letter topic>.replays``, produced in the transaction that produces the replayed record. A replay reads the
ledger (``read_committed``) after ``init_transactions`` (which fences any earlier replayer of the same dead-letter
topic and completes or aborts its open transaction, since all share one ``transactional.id``), and skips every dead
letter the ledger names. So a dead letter is re-published either together with its ledger entry or not at all, and
never twice, however a replay is interrupted or repeated. Each replayed record also carries the headers
``freightline.replay.of`` (``<dead-letter topic>/<partition>/<offset>``) and ``freightline.replay.at`` (ms).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from services.common.deadletter import dead_letter_topic
from services.common.kafka import ensure_topics
from services.common.serde import AvroSerde, SerdeError
from services.common.settings import KafkaSettings

REPLAY_OF_HEADER = "freightline.replay.of"
REPLAY_AT_HEADER = "freightline.replay.at"
DLQ_SUFFIX = dead_letter_topic("")


def replay_ledger_topic(dlq_topic: str) -> str:
    """The compacted topic that records which dead letters of ``dlq_topic`` were replayed."""
    return f"{dlq_topic}.replays"


def dlq_topic_of(topic: str) -> str:
    """``topic`` when it is a dead-letter topic, else the dead-letter topic of the source topic ``topic``."""
    return topic if topic.endswith(DLQ_SUFFIX) else dead_letter_topic(topic)


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: its place in the dead-letter topic and its envelope."""

    topic: str
    partition: int
    offset: int
    envelope: Mapping[str, Any]

    @property
    def key(self) -> str:
        """Its ledger key: ``<partition>:<offset>`` in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        return str(self.envelope["error_type"])

    @property
    def failed_at(self) -> dt.datetime:
        value = self.envelope["failed_at"]  # timestamp-millis: a datetime once decoded
        return value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)

    @property
    def source_topic(self) -> str:
        return str(self.envelope["source_topic"])

    @property
    def source_partition(self) -> int:
        return int(self.envelope["source_partition"])

    @property
    def source_offset(self) -> int:
        return int(self.envelope["source_offset"])

    def original_headers(self) -> list[tuple[str, bytes | None]]:
        return [(str(h["key"]), h["value"]) for h in self.envelope.get("original_headers") or []]


@dataclass(frozen=True)
class Selection:
    """Which dead letters to act on (every criterion given must hold; ``to_offset`` and ``until`` inclusive)."""

    reasons: frozenset[str] = frozenset()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    source_partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        if self.until is not None and letter.failed_at > self.until:
            return False
        if self.source_partition is not None and letter.source_partition != self.source_partition:
            return False
        if self.from_offset is not None and letter.source_offset < self.from_offset:
            return False
        return self.to_offset is None or letter.source_offset <= self.to_offset


def select(letters: Iterable[DeadLetter], selection: Selection) -> list[DeadLetter]:
    return [letter for letter in letters if selection.matches(letter)]


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 time (UTC when no offset is given) or epoch milliseconds."""
    text = value.strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def replay_headers(letter: DeadLetter, now_ms: int) -> list[tuple[str, str | bytes | None]]:
    """The original headers (a former replay's marker replaced) plus this replay's marker."""
    kept: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in letter.original_headers() if k not in (REPLAY_OF_HEADER, REPLAY_AT_HEADER)
    ]
    marker = f"{letter.topic}/{letter.partition}/{letter.offset}".encode()
    return [*kept, (REPLAY_OF_HEADER, marker), (REPLAY_AT_HEADER, str(now_ms).encode())]


def read_messages(settings: KafkaSettings, topic: str, *, timeout_s: float = 60.0) -> Iterator[Message]:
    """Every record of ``topic`` up to its end now (``read_committed``: the last stable offset), in partition order;
    nothing when the topic does not exist. Control records of transactions are skipped by the client. A topic the
    client may not describe (an ACL) raises ``RuntimeError`` naming it rather than reading as empty."""
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": f"freightline-dlq-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or _missing(metadata.error):
            return
        if metadata.error is not None:
            raise RuntimeError(f"reading {topic}: {metadata.error.str()}")
        pending = set()
        assignment = []
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                pending.add(partition)
                assignment.append(TopicPartition(topic, partition, low))
        if not assignment:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(pending)} did not reach their end")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                else:
                    raise RuntimeError(f"reading {topic}: {error}")
    finally:
        consumer.close()


def _missing(error: KafkaError | None) -> bool:
    return error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def read_dead_letters(settings: KafkaSettings, serde: AvroSerde, topic: str) -> list[DeadLetter]:
    """Every dead letter of ``topic`` (a dead-letter topic), oldest first per partition."""
    letters = []
    for message in read_messages(settings, topic):
        try:
            envelope = serde.decode(message.value())
        except SerdeError as error:
            raise ValueError(
                f"{topic}[{message.partition()}]@{message.offset()} is not a dead letter: {error}"
            ) from None
        letters.append(DeadLetter(topic, message.partition() or 0, message.offset() or 0, envelope))
    return letters


def replayed_keys(settings: KafkaSettings, dlq_topic: str) -> dict[str, dict[str, Any]]:
    """The ledger of ``dlq_topic``: ledger key -> what the replay recorded (target topic, time)."""
    ledger: dict[str, dict[str, Any]] = {}
    for message in read_messages(settings, replay_ledger_topic(dlq_topic)):
        key = message.key()
        if key is not None and message.value() is not None:
            ledger[key.decode()] = json.loads(message.value() or b"{}")
    return ledger


@dataclass
class ReplayResult:
    selected: int = 0
    already_replayed: list[DeadLetter] = field(default_factory=list)
    replayed: list[DeadLetter] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)


def replay(
    settings: KafkaSettings,
    letters: Sequence[DeadLetter],
    *,
    to: str | None = None,
    dry_run: bool = False,
    timeout_s: float = 60.0,
) -> ReplayResult:
    """Re-publish ``letters`` (all from one dead-letter topic) to their source topic (their source partition) or
    to ``to``, each with its ledger entry in one transaction; those the ledger already names are skipped. A dry
    run reads the ledger and reports what would be replayed, producing nothing."""
    result = ReplayResult(selected=len(letters))
    if not letters:
        return result
    topics = {letter.topic for letter in letters}
    if len(topics) != 1:
        raise ValueError(f"dead letters of several topics: {sorted(topics)}")
    dlq_topic = topics.pop()
    ledger_topic = replay_ledger_topic(dlq_topic)
    producer: KafkaProducer | None = None
    if not dry_run:
        ensure_topics(settings, [(ledger_topic, 1, {"cleanup.policy": "compact"})])
        producer = KafkaProducer(
            {
                **settings.client_config(),
                "client.id": "freightline-dlq-replay",
                "transactional.id": f"freightline-dlq-replay-{dlq_topic}",
                "enable.idempotence": True,
                "acks": "all",
                "allow.auto.create.topics": False,  # asking for a target's metadata must not create it
            }
        )
        producer.init_transactions(timeout_s)  # fences an earlier replayer; its open transaction ends first
    ledger = replayed_keys(settings, dlq_topic)
    pending: list[DeadLetter] = []
    for letter in letters:
        (result.already_replayed if letter.key in ledger else pending).append(letter)
    for letter in pending:
        target = to or letter.source_topic
        result.targets[target] = result.targets.get(target, 0) + 1
    if producer is None or not pending:
        result.replayed = pending if dry_run else []
        return result
    partitions = _partitions(producer, {to or letter.source_topic for letter in pending})
    now_ms = int(time.time() * 1000)
    producer.begin_transaction()
    try:
        for letter in pending:
            target = to or letter.source_topic
            same_partition = target == letter.source_topic and letter.source_partition in partitions.get(target, ())
            extra: dict[str, Any] = {"partition": letter.source_partition} if same_partition else {}
            producer.produce(
                target,
                letter.envelope["original_value"],
                letter.envelope["original_key"],
                headers=replay_headers(letter, now_ms),
                **extra,
            )
            entry = {"target": target, "replayed_at": now_ms, "reason": letter.reason}
            producer.produce(ledger_topic, json.dumps(entry).encode(), letter.key.encode())
            producer.poll(0)
        producer.commit_transaction(timeout_s)
    except BaseException:
        # a producer the failure left fatal cannot abort (the broker answers INVALID_TXN_STATE): its transaction
        # stays uncommitted, invisible to read_committed readers, and the next replay's init_transactions ends it;
        # the error worth reporting is the one that failed the transaction
        with contextlib.suppress(KafkaException):
            producer.abort_transaction(timeout_s)
        del producer  # destroyed now, not when the error's traceback goes (a caller may keep it)
        raise
    result.replayed = pending
    return result


def _partitions(producer: KafkaProducer, topics: Iterable[str]) -> dict[str, set[int]]:
    """Each target's partitions; ``ValueError`` for a target that does not exist or that the client may not use."""
    found: dict[str, set[int]] = {}
    for topic in sorted(topics):
        metadata = producer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or _missing(metadata.error):
            raise ValueError(f"target topic {topic} does not exist")
        if metadata.error is not None:
            raise ValueError(f"target topic {topic}: {metadata.error.str()}")
        found[topic] = set(metadata.partitions)
    return found
