"""Reference tables: the compacted ``reference.*`` topics read to their end, then followed.

One :class:`ReferenceReader` (a confluent-kafka consumer with its partitions *assigned*, never a group member and
never committing) reads every reference topic from its first offset up to the end offsets the topics had when it
started (:meth:`ReferenceReader.recover`), applying each record to its kind's table (the latest value by key
wins, a tombstone deletes): the enricher starts enriching only after that, so no event is joined with partial
reference data. Then :meth:`ReferenceReader.start` keeps applying later records (price changes) in a thread.

Tables (:class:`MemoryTable`, :class:`RocksTable`) hold the projected attributes enrichment needs. The memory
table decodes each record once, when it arrives; the RocksDB table (``rocksdict``) keeps the records' bytes under
the data directory with the next offset of each partition, so a restart reads only what arrived since; it
checks that a record decodes when it arrives and decodes it again on each read. Undecodable records leave the
entity unknown (``on_error`` counts them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.common.serde import AvroSerde, SerdeError
from services.common.settings import KafkaSettings
from services.enricher import join

log = logging.getLogger(__name__)

ErrorHandler = Callable[[str, Exception], None]
Projector = Callable[[bytes], join.Reference | None]


class ReferenceTable(Protocol):
    """What the reader writes and enrichment reads."""

    lookup: join.Lookup  # key -> projected reference, None when unknown

    def apply(self, key: str, value: bytes | None, partition: int, offset: int) -> None: ...

    def offsets(self) -> dict[int, int]:
        """Next offset to read per partition (empty: from the beginning)."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


def projector(kind: str, serde: AvroSerde, on_error: ErrorHandler | None = None) -> Projector:
    """Wire-format Avro reference record -> its projected attributes (``None`` when it does not decode)."""

    def project(value: bytes) -> join.Reference | None:
        try:
            return join.project_reference(kind, serde.decode(value))
        except (SerdeError, KeyError, TypeError, ValueError) as error:
            if on_error is not None:
                on_error(kind, error)
            return None

    return project


class MemoryTable:
    """Projected references in a dict; recovered from the topic's beginning on every start."""

    def __init__(self, project: Projector) -> None:
        self.project = project
        self.data: dict[str, join.Reference] = {}
        self.lookup: join.Lookup = self.data.get

    def apply(self, key: str, value: bytes | None, partition: int, offset: int) -> None:
        reference = None if value is None else self.project(value)
        if reference is None:
            self.data.pop(key, None)
        else:
            self.data[key] = reference

    def offsets(self) -> dict[int, int]:
        return {}

    def __len__(self) -> int:
        return len(self.data)

    def close(self) -> None:
        pass


class RocksTable:
    """Records' bytes in RocksDB (``rocksdict``) under ``path``, with the next offset of each partition."""

    OFFSET_PREFIX = b"\x00offset:"

    def __init__(self, path: Path, project: Projector) -> None:
        from rocksdict import Rdict  # optional: only this store needs the binding

        path.parent.mkdir(parents=True, exist_ok=True)
        self.project = project
        self.db = Rdict(str(path))
        self.positions = Rdict(f"{path}.offsets")
        self.size = sum(1 for _ in self.db.keys())  # noqa: SIM118 (an Rdict is not iterable)
        self.lookup: join.Lookup = self._get

    def _get(self, key: str) -> join.Reference | None:
        value = self.db.get(key.encode())
        return None if value is None else self.project(value)

    def apply(self, key: str, value: bytes | None, partition: int, offset: int) -> None:
        raw = key.encode()
        present = raw in self.db
        if value is None or self.project(value) is None:  # a tombstone, or undecodable: the entity is unknown
            if present:
                del self.db[raw]
                self.size -= 1
        else:
            self.db[raw] = value
            self.size += 0 if present else 1
        # Written after the value: a crash in between re-applies the same record, which changes nothing.
        self.positions[partition] = offset + 1

    def offsets(self) -> dict[int, int]:
        return {int(partition): int(offset) for partition, offset in self.positions.items()}

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        self.db.close()
        self.positions.close()


def open_table(store: str, directory: Path, topic: str, project: Projector) -> ReferenceTable:
    """A table for ``store`` (``memory://`` or ``rocksdb://``; RocksDB files under ``directory``)."""
    if store.startswith("rocksdb://"):
        return RocksTable(directory / topic, project)
    return MemoryTable(project)


class ReferenceReader:
    """Reads the reference topics into their tables: to the end first (:meth:`recover`), then as they grow."""

    def __init__(
        self,
        kafka: KafkaSettings,
        tables: Mapping[str, ReferenceTable],
        *,
        client_id: str,
        poll_timeout_s: float = 0.5,
        metadata_timeout_s: float = 30.0,
    ) -> None:
        self.tables = dict(tables)  # by topic
        self.poll_timeout_s = poll_timeout_s
        self.metadata_timeout_s = metadata_timeout_s
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                # Needed by the client, never used: partitions are assigned, nothing is committed.
                "group.id": client_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "queued.max.messages.kbytes": 32_768,
            }
        )
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: Exception | None = None
        self.recovered = 0

    def _assignment(self) -> tuple[list[TopicPartition], dict[tuple[str, int], int]]:
        """Partitions to read from their stored (or first) offsets, and the end offsets recovery reads up to."""
        assignment: list[TopicPartition] = []
        ends: dict[tuple[str, int], int] = {}
        for topic, table in self.tables.items():
            metadata = self.consumer.list_topics(topic, timeout=self.metadata_timeout_s).topics.get(topic)
            if metadata is None or metadata.error is not None:
                raise KafkaException(metadata.error if metadata is not None else f"no topic {topic}")
            stored = table.offsets()
            for partition in sorted(metadata.partitions):
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self.metadata_timeout_s
                )
                start = stored.get(partition, OFFSET_BEGINNING)
                if start != OFFSET_BEGINNING and not low <= start <= high:
                    start = OFFSET_BEGINNING  # the topic was recreated or truncated: read it again
                assignment.append(TopicPartition(topic, partition, start))
                if high > (low if start == OFFSET_BEGINNING else start):
                    ends[(topic, partition)] = high
        return assignment, ends

    def _apply(self, messages: list[Message]) -> None:
        tables = self.tables
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaException(error)
                log.warning("reference consumer: %s", error)
                continue
            key = message.key()
            if key is None:
                continue
            tables[message.topic() or ""].apply(
                key.decode(), message.value(), message.partition() or 0, message.offset() or 0
            )
            self.recovered += 1

    def _reached(self, ends: dict[tuple[str, int], int]) -> None:
        """Drop the partitions whose position reached their end offset (control records included)."""
        positions = self.consumer.position([TopicPartition(t, p) for t, p in ends])
        for position in positions:
            if position.offset >= 0 and position.offset >= ends[(position.topic, position.partition)]:
                del ends[(position.topic, position.partition)]

    def recover(self) -> int:
        """Assign every reference partition and read it up to its current end; returns the records applied."""
        assignment, ends = self._assignment()
        self.consumer.assign(assignment)
        while ends:
            if self.stopping.is_set():
                break
            self._apply(self.consumer.consume(1000, self.poll_timeout_s))
            self._reached(ends)
        log.info("reference tables recovered from %d records: %s", self.recovered, self.sizes())
        return self.recovered

    def sizes(self) -> dict[str, int]:
        return {topic: len(table) for topic, table in self.tables.items()}

    def _follow(self) -> None:
        try:
            while not self.stopping.is_set():
                self._apply(self.consumer.consume(1000, self.poll_timeout_s))
        except (KafkaException, SerdeError, OSError) as error:  # the service's health check reports it
            self.error = error
            log.error("the reference reader stopped: %s", error)

    def start(self) -> None:
        """Keep applying later reference records in a thread (after :meth:`recover`)."""
        self.thread = threading.Thread(target=self._follow, name="enricher-references", daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread is None or self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.consumer.close()
        for table in self.tables.values():
            table.close()
