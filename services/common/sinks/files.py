"""Exactly-once files in a file system or object store (HDFS, GCS), as Kafka Connect's storage sinks do it.

Layout: ``<root>/<topic>/dt=YYYY-MM-DD/hour=HH/<topic>+<partition>+<startOffset>+<endOffset>.avro``, partitioned
by event time (UTC). A file holds records of one topic partition, one hour and one writer schema, in offset
order; start and end are the offsets of its first and last record. Files are Avro object container files whose
blocks carry the records' original Avro bodies (no re-encoding).

Protocol for one batch (per topic partition):

1. every file of the batch is written in full to ``<root>/_temporary/<topic>/<partition>/<first>+<last>/...``
   (``first``/``last``: the batch's offsets for that partition);
2. the dead letters of the batch are flushed to Kafka;
3. each temporary file is moved to its final name (an atomic rename that never overwrites);
4. the consumer commits the batch's offsets.

Recovery, whenever a partition is (re)assigned or a write failed: temporary batches of which at least one file
reached its final name are rolled forward (all their files were complete before the first move), the others
are discarded; then the highest end offset among the partition's final files tells where the target stands, and
records at or below it are skipped. A crash at any point therefore leaves neither duplicates nor holes.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import Any, Protocol

import fastavro
from confluent_kafka import Message

from services.common.sinks.records import HourPartitions, SinkRecord
from services.common.sinks.runner import SinkContext, TopicPartitionKey

log = logging.getLogger(__name__)

TEMPORARY = "_temporary"
EXTENSION = ".avro"
SYNC_MARKER = b"freightline-avro"  # 16 bytes: files are byte-identical when rewritten


class FileStore(Protocol):
    """The few operations the protocol needs; paths are '/'-separated and relative to the store's base."""

    def write(self, path: str, data: bytes) -> None:
        """Create or replace ``path`` with ``data`` (creating parent directories)."""

    def move(self, source: str, target: str) -> bool:
        """Atomically move ``source`` to ``target`` unless ``target`` exists; True when moved. When ``target``
        exists, ``source`` is removed and False is returned."""

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None:
        """Remove a file; a missing file is not an error."""

    def list_files(self, prefix: str) -> list[tuple[str, int]]:
        """Every file below ``prefix`` (recursively) as (path, size); empty when ``prefix`` does not exist."""

    def read(self, path: str) -> bytes: ...

    def healthy(self) -> bool: ...

    # A store with directories (HDFS) also defines ``remove_tree(path)``: remove a directory and everything below
    # it, a missing one being no error. The target removes each batch's emptied temporary directory with it, so
    # that recovery lists only what is in flight (an object store has no empty directories and needs none).


# -- naming -----------------------------------------------------------------------------------------------
def file_name(topic: str, partition: int, start: int, end: int) -> str:
    return f"{topic}+{partition}+{start}+{end}{EXTENSION}"


_NAME = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<start>\d+)\+(?P<end>\d+)\.avro$")


@dataclass(frozen=True)
class CommittedFile:
    path: str
    topic: str
    partition: int
    start: int
    end: int
    size: int


def parse_file_name(path: str, size: int = 0) -> CommittedFile | None:
    name = path.rsplit("/", 1)[-1]
    match = _NAME.match(name)
    if match is None:
        return None
    return CommittedFile(
        path=path,
        topic=match["topic"],
        partition=int(match["partition"]),
        start=int(match["start"]),
        end=int(match["end"]),
        size=size,
    )


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


# -- Avro container files ---------------------------------------------------------------------------------
def _zigzag(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def container_file(schema: Any, bodies: list[bytes], codec: str = "null", block_records: int = 10_000) -> bytes:
    """An Avro object container file of pre-encoded record bodies (header written by fastavro)."""
    if codec not in ("null", "deflate"):
        raise ValueError(f"unsupported codec {codec!r} (null or deflate)")
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [], codec=codec, sync_marker=SYNC_MARKER)
    for start in range(0, len(bodies), block_records):
        chunk = bodies[start : start + block_records]
        data = b"".join(chunk)
        if codec == "deflate":
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = compressor.compress(data) + compressor.flush()
        buffer.write(_zigzag(len(chunk)))
        buffer.write(_zigzag(len(data)))
        buffer.write(data)
        buffer.write(SYNC_MARKER)
    return buffer.getvalue()


def count_records(data: bytes) -> int:
    """Records in an Avro container file (reads block headers only)."""
    return sum(block.num_records for block in fastavro.block_reader(io.BytesIO(data)))


# -- planning (pure) --------------------------------------------------------------------------------------
@dataclass
class PlannedFile:
    topic: str
    partition: int
    schema_id: int
    temporary: str
    final: str
    records: list[SinkRecord]

    @property
    def start(self) -> int:
        return self.records[0].offset

    @property
    def end(self) -> int:
        return self.records[-1].offset

    @property
    def batch(self) -> str:
        """The name of the batch's temporary directory (``<first>+<last>``) below its partition's."""
        return self.temporary.split("/" + TEMPORARY + "/", 1)[-1].split("/")[2]


def plan_files(
    root: str,
    records: Iterable[SinkRecord],
    batch_ranges: dict[TopicPartitionKey, tuple[int, int]],
    *,
    max_file_records: int,
    max_file_bytes: int,
) -> list[PlannedFile]:
    """Group records by (topic, partition, hour, schema) in offset order and cut files at the size limits."""
    groups: dict[tuple[str, int, str, str, int], list[SinkRecord]] = defaultdict(list)
    hours = HourPartitions()
    for record in records:
        day, hour = hours(record.event_time)
        groups[(record.topic, record.partition, day, hour, record.schema_id)].append(record)
    planned: list[PlannedFile] = []
    for (topic, partition, day, hour, schema_id), group in sorted(groups.items(), key=lambda item: item[0][:2]):
        if any(group[i].offset > group[i + 1].offset for i in range(len(group) - 1)):
            group.sort(key=attrgetter("offset"))
        first, last = batch_ranges[(topic, partition)]
        chunk: list[SinkRecord] = []
        size = 0
        chunks: list[list[SinkRecord]] = []
        for record in group:
            if chunk and (len(chunk) >= max_file_records or size + record.size > max_file_bytes):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(record)
            size += record.size
        if chunk:
            chunks.append(chunk)
        for part in chunks:
            name = file_name(topic, partition, part[0].offset, part[-1].offset)
            relative = join(day, hour, name)
            planned.append(
                PlannedFile(
                    topic=topic,
                    partition=partition,
                    schema_id=schema_id,
                    temporary=join(root, TEMPORARY, topic, str(partition), f"{first}+{last}", relative),
                    final=join(root, topic, relative),
                    records=part,
                )
            )
    return planned


def final_of_temporary(root: str, temporary: str) -> str:
    """``<root>/_temporary/<topic>/<p>/<batch>/<dt>/<hour>/<name>`` -> ``<root>/<topic>/<dt>/<hour>/<name>``."""
    relative = temporary[len(join(root, TEMPORARY)) + 1 :]
    topic, _partition, _batch, rest = relative.split("/", 3)
    return join(root, topic, rest)


# -- the target -------------------------------------------------------------------------------------------
class FileSinkTarget:
    """A ``SinkTarget`` writing exactly-once Avro files through a ``FileStore``.

    The files of a batch are uploaded (and then moved) ``parallelism`` at a time; each step still completes for
    every file before the next one starts, so the protocol above is unchanged.
    """

    needs_values = False  # files carry the original bodies: event id and time are all the target reads
    check_bodies = True  # ... so every body is checked against its writer schema before it lands in a file

    def __init__(
        self,
        store: FileStore,
        ctx: SinkContext,
        *,
        root: str,
        codec: str = "null",
        max_file_records: int = 100_000,
        max_file_bytes: int = 128 * 1024 * 1024,
        parallelism: int = 4,
    ) -> None:
        self.store = store
        self.parallelism = max(parallelism, 1)
        self._pool: ThreadPoolExecutor | None = None
        self.ctx = ctx
        self.root = root.strip("/")
        self.codec = codec
        self.max_file_records = max_file_records
        self.max_file_bytes = max_file_bytes
        # next offset not yet in the target, per owned partition (known after recovery)
        self.next_offset: dict[TopicPartitionKey, int] = {}

    # SinkTarget -------------------------------------------------------------------------------------------
    def open(self) -> None:
        if not self.store.healthy():
            raise ConnectionError("file store does not answer")

    def healthy(self) -> bool:
        return self.store.healthy()

    def revoked(self, partitions: list[TopicPartitionKey]) -> None:
        for tp in partitions:
            self.next_offset.pop(tp, None)

    def assigned(self, partitions: list[TopicPartitionKey]) -> None:
        """Recover newly assigned partitions ahead of their first batch; when that fails (the store is down),
        the first write recovers them instead."""
        unknown = [tp for tp in partitions if tp not in self.next_offset]
        if not unknown or not self.store.healthy():
            return
        try:
            self.recover(unknown)
        except Exception:
            for tp in unknown:
                self.next_offset.pop(tp, None)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _all(self, calls: list[Callable[[], Any]]) -> list[Any]:
        """Run ``calls`` (at most ``parallelism`` at a time); wait for every one, then raise the first failure."""
        if len(calls) <= 1 or self.parallelism == 1:
            return [call() for call in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="file-store")
        futures = [self._pool.submit(call) for call in calls]
        errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def _submit(self, call: Callable[[], Any], calls: int) -> Future[Any]:
        """Run ``call`` in the pool (inline when it is the only call or the pool has one slot)."""
        if calls <= 1 or self.parallelism == 1:
            future: Future[Any] = Future()
            try:
                future.set_result(call())
            except Exception as error:
                future.set_exception(error)
            return future
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="file-store")
        return self._pool.submit(call)

    def write(self, records: list[SinkRecord], batch: list[Message]) -> None:
        ranges = batch_ranges(batch)
        try:
            self._write(records, ranges)
        except Exception:
            for tp in ranges:  # the target's state is unknown: recover before the retry
                self.next_offset.pop(tp, None)
            raise

    def _write(self, records: list[SinkRecord], ranges: dict[TopicPartitionKey, tuple[int, int]]) -> None:
        unknown = [tp for tp in ranges if tp not in self.next_offset]
        if unknown:
            self.recover(unknown)
        fresh = [r for r in records if r.offset >= self.next_offset[(r.topic, r.partition)]]
        skipped = len(records) - len(fresh)
        if skipped:
            log.info("skipping %d records the target already holds", skipped)
            for record in records:
                if record.offset < self.next_offset[(record.topic, record.partition)]:
                    self.ctx.metrics.skipped.labels(record.topic).inc()
        planned = plan_files(
            self.root,
            fresh,
            ranges,
            max_file_records=self.max_file_records,
            max_file_bytes=self.max_file_bytes,
        )
        started = time.monotonic()
        sizes: dict[str, int] = {}
        uploads: list[Future[Any]] = []
        try:
            for item in planned:  # each file is uploaded while the next one is built
                data = container_file(
                    self.ctx.serde.writer_schema(item.schema_id), [r.body for r in item.records], self.codec
                )
                sizes[item.final] = len(data)
                uploads.append(self._submit(partial(self.store.write, item.temporary, data), len(planned)))
        finally:
            errors = [upload.exception() for upload in uploads]  # every upload completes before anything moves
        for error in errors:
            if error is not None:
                raise error
        self.ctx.flush_dead_letters()
        outcomes = self._all([partial(self.store.move, item.temporary, item.final) for item in planned])
        for item, moved in zip(planned, outcomes, strict=True):
            if moved:
                self.ctx.metrics.files_committed.labels(item.topic).inc()
                self.ctx.metrics.records_written.labels(item.topic).inc(len(item.records))
                self.ctx.metrics.bytes_written.labels(item.topic).inc(sizes[item.final])
            else:
                log.warning("%s already committed; kept the existing file", item.final)
        for tp, (_first, last) in ranges.items():
            self.next_offset[tp] = max(self.next_offset.get(tp, 0), last + 1)
        if planned:
            log.debug("committed %d files in %.3fs", len(planned), time.monotonic() - started)
            self._remove_trees({join(self.root, TEMPORARY, i.topic, str(i.partition), i.batch) for i in planned})

    def _remove_trees(self, directories: Iterable[str], wait: bool = False) -> None:
        """Remove emptied temporary directories (stores with directories only); in the background unless ``wait``:
        a directory left behind costs a recovery one more listing, nothing else."""
        remove = getattr(self.store, "remove_tree", None)
        if remove is None:
            return

        def run(directory: str) -> None:
            try:
                remove(directory)
            except Exception as error:  # only tidiness is lost; recovery removes it later
                log.warning("could not remove %s: %s", directory, error)

        calls: list[Callable[[], Any]] = [partial(run, directory) for directory in sorted(directories)]
        if wait:
            self._all(calls)
        else:
            for call in calls:
                self._submit(call, 2)

    # recovery ---------------------------------------------------------------------------------------------
    def recover(self, partitions: list[TopicPartitionKey]) -> None:
        """Finish or discard interrupted batches of ``partitions``, then learn where each one stands (partitions,
        then topics, ``parallelism`` at a time)."""
        by_topic: dict[str, list[int]] = defaultdict(list)
        for topic, partition in partitions:
            by_topic[topic].append(partition)
        self._all([partial(self._finish_temporary, topic, partition) for topic, partition in partitions])
        # What is left of the partitions' temporary directories is empty (directories of batches written before
        # they were removed after each batch): removed, so that the next recovery lists nothing but work in flight.
        emptied = [join(self.root, TEMPORARY, topic, str(partition)) for topic, partition in partitions]
        self._remove_trees(emptied, wait=True)
        topics = sorted(by_topic)
        listed = self._all([partial(committed_ends, self.store, self.root, topic) for topic in topics])
        for topic, ends in zip(topics, listed, strict=True):
            for partition in by_topic[topic]:
                end = ends.get(partition)
                self.next_offset[(topic, partition)] = end + 1 if end is not None else 0
                log.info("recovered %s[%d]: target holds offsets up to %s", topic, partition, end)

    def _finish_temporary(self, topic: str, partition: int) -> None:
        prefix = join(self.root, TEMPORARY, topic, str(partition))
        batches: dict[str, list[str]] = defaultdict(list)
        for path, _size in self.store.list_files(prefix):
            batch = path[len(prefix) + 1 :].split("/", 1)[0]
            batches[batch].append(path)
        for batch, paths in sorted(batches.items()):
            finals = {path: final_of_temporary(self.root, path) for path in paths}
            started = any(self.store.exists(final) for final in finals.values())
            for path, final in finals.items():
                if started:
                    self.store.move(path, final)
                else:
                    self.store.delete(path)
            log.info(
                "%s temporary batch %s of %s[%d]", "rolled forward" if started else "discarded", batch, topic, partition
            )


def batch_ranges(batch: list[Message]) -> dict[TopicPartitionKey, tuple[int, int]]:
    """First and last offset of each topic partition in a Kafka batch."""
    lows: dict[TopicPartitionKey, int] = {}
    highs: dict[TopicPartitionKey, int] = {}
    for message in batch:
        tp = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        low = lows.get(tp)
        if low is None:
            lows[tp] = highs[tp] = offset
        elif offset > highs[tp]:
            highs[tp] = offset
        elif offset < low:
            lows[tp] = offset
    return {tp: (low, highs[tp]) for tp, low in lows.items()}


def committed_files(store: FileStore, root: str, topic: str) -> list[CommittedFile]:
    files = []
    for path, size in store.list_files(join(root, topic)):
        parsed = parse_file_name(path, size)
        if parsed is not None and parsed.topic == topic:
            files.append(parsed)
    return files


def committed_ends(store: FileStore, root: str, topic: str) -> dict[int, int]:
    """Highest committed end offset per partition of ``topic``."""
    ends: dict[int, int] = {}
    for item in committed_files(store, root, topic):
        ends[item.partition] = max(ends.get(item.partition, -1), item.end)
    return ends


def committed_paths(store: FileStore, root: str, topics: Iterable[str]) -> set[str]:
    """Every committed file of ``topics``: pass it as ``known`` to a later ``summary`` to see what came since."""
    return {f.path for topic in topics for f in committed_files(store, root, topic)}


def summary(
    store: FileStore, root: str, topics: Iterable[str], *, count: bool = True, known: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """What landed per topic: files, bytes, records (reading block headers), hour partitions, temporaries.

    Files in ``known`` are left out, so the cost of a summary since a point is that of the new files only.
    """
    result: dict[str, Any] = {"root": root, "topics": {}}
    for topic in topics:
        files = [f for f in committed_files(store, root, topic) if f.path not in known]
        records = sum(count_records(store.read(f.path)) for f in files) if count else None
        hours = sorted({"/".join(f.path.split("/")[-3:-1]) for f in files})
        result["topics"][topic] = {
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "records": records,
            "partitions": sorted({f.partition for f in files}),
            "hours": hours,
            "temporary_files": len(store.list_files(join(root, TEMPORARY, topic))),
        }
    return result
