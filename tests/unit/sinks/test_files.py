"""The exactly-once file protocol against an in-memory store that can fail at any step."""

from __future__ import annotations

import collections
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

import fastavro
import pytest

from services.common.sinks.files import (
    TEMPORARY,
    FileSinkTarget,
    committed_files,
    container_file,
    count_records,
    final_of_temporary,
    join,
    parse_file_name,
    plan_files,
)
from services.common.sinks.records import SinkRecord, hour_partition

SCHEMA = fastavro.parse_schema(
    {"type": "record", "name": "E", "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "long"}]}
)
T0 = dt.datetime(2026, 11, 2, 7, 59, 58, tzinfo=dt.UTC)


def _body(record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    return buffer.getvalue()


def _record(topic: str, partition: int, offset: int) -> SinkRecord:
    event_id = f"{topic}-{partition}-{offset}"
    value: dict[str, Any] = {"id": event_id, "n": offset}
    return SinkRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=None,
        schema_id=1,
        value=value,
        event_id=event_id,
        event_time=T0 + dt.timedelta(seconds=offset),
        body=_body(value),
    )


class Crash(Exception):
    pass


@dataclass
class MemoryStore:
    files: dict[str, bytes] = field(default_factory=dict)
    fail_after: int | None = None  # operations before a simulated crash
    ops: int = 0

    def _tick(self) -> None:
        self.ops += 1
        if self.fail_after is not None and self.ops > self.fail_after:
            raise Crash(f"crash at operation {self.ops}")

    def write(self, path: str, data: bytes) -> None:
        self._tick()
        self.files[path] = data

    def move(self, source: str, target: str) -> bool:
        self._tick()
        data = self.files.pop(source)
        if target in self.files:
            return False
        self.files[target] = data
        return True

    def exists(self, path: str) -> bool:
        return path in self.files

    def delete(self, path: str) -> None:
        self.files.pop(path, None)

    def list_files(self, prefix: str) -> list[tuple[str, int]]:
        return [(p, len(d)) for p, d in self.files.items() if p.startswith(prefix.rstrip("/") + "/")]

    def read(self, path: str) -> bytes:
        return self.files[path]

    def healthy(self) -> bool:
        return True


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._t, self._p, self._o = topic, partition, offset

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class FakeSerde:
    def writer_schema(self, schema_id: int) -> Any:
        return SCHEMA


class FakeMetrics:
    class _Counter:
        def labels(self, *_: Any) -> FakeMetrics._Counter:
            return self

        def inc(self, *_: Any) -> None:
            return None

    def __init__(self) -> None:
        self.files_committed = self.records_written = self.bytes_written = self.skipped = self._Counter()


class FakeContext:
    def __init__(self) -> None:
        self.serde = FakeSerde()
        self.metrics = FakeMetrics()
        self.flushes = 0

    def flush_dead_letters(self, timeout: float = 60.0) -> None:
        self.flushes += 1


def _target(store: MemoryStore, max_file_records: int = 7) -> FileSinkTarget:
    return FileSinkTarget(store, FakeContext(), root="raw", max_file_records=max_file_records)  # type: ignore[arg-type]


def _landed(store: MemoryStore, topic: str = "t") -> collections.Counter[str]:
    ids: collections.Counter[str] = collections.Counter()
    for item in committed_files(store, "raw", topic):
        for row in fastavro.reader(io.BytesIO(store.files[item.path])):
            ids[row["id"]] += 1  # type: ignore[call-overload,index]
    return ids


def _batches(offsets: range, partitions: int = 2, size: int = 10) -> list[list[tuple[int, int]]]:
    items = [(p, o) for o in offsets for p in range(partitions)]
    return [items[i : i + size] for i in range(0, len(items), size)]


def _write(target: FileSinkTarget, batch: list[tuple[int, int]]) -> None:
    records = [_record("t", p, o) for p, o in batch]
    target.write(records, [FakeMessage("t", p, o) for p, o in batch])  # type: ignore[misc]


def test_container_file_is_read_back_by_fastavro() -> None:
    rows = [{"id": str(i), "n": i} for i in range(25)]
    for codec in ("null", "deflate"):
        data = container_file(SCHEMA, [_body(r) for r in rows], codec, block_records=10)
        assert list(fastavro.reader(io.BytesIO(data))) == rows
        assert count_records(data) == 25


def test_names_and_paths() -> None:
    parsed = parse_file_name("raw/web.clicks.v1/dt=2026-11-02/hour=07/web.clicks.v1+2+100+199.avro", 5)
    assert parsed is not None
    assert (parsed.topic, parsed.partition, parsed.start, parsed.end, parsed.size) == ("web.clicks.v1", 2, 100, 199, 5)
    assert parse_file_name("raw/x/other.avro") is None
    temporary = join("raw", TEMPORARY, "t", "0", "5+9", "dt=2026-11-02", "hour=07", "t+0+5+9.avro")
    assert final_of_temporary("raw", temporary) == "raw/t/dt=2026-11-02/hour=07/t+0+5+9.avro"
    assert hour_partition(dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))) == (
        "dt=2026-11-03",
        "hour=01",
    )


def test_plan_splits_by_hour_and_size() -> None:
    records = [_record("t", 0, o) for o in range(10)]  # 07:59:58 .. 08:00:07
    planned = plan_files("raw", records, {("t", 0): (0, 9)}, max_file_records=3, max_file_bytes=1 << 20)
    finals = sorted(p.final for p in planned)
    assert finals[0] == "raw/t/dt=2026-11-02/hour=07/t+0+0+1.avro"
    assert [len(p.records) for p in sorted(planned, key=lambda p: p.start)] == [2, 3, 3, 2]
    assert all(p.temporary.startswith("raw/_temporary/t/0/0+9/") for p in planned)


def test_clean_run_writes_every_record_once() -> None:
    store = MemoryStore()
    target = _target(store)
    for batch in _batches(range(40)):
        _write(target, batch)
    counts = _landed(store)
    assert len(counts) == 80 and set(counts.values()) == {1}
    assert store.list_files(f"raw/{TEMPORARY}") == []


@pytest.mark.parametrize("crash_at", range(1, 40))
def test_a_crash_at_any_step_then_replay_leaves_no_duplicates_or_holes(crash_at: int) -> None:
    store = MemoryStore(fail_after=crash_at)
    batches = _batches(range(30))
    target = _target(store)
    done = 0
    try:
        for batch in batches:
            _write(target, batch)
            done += 1  # the consumer would commit here
    except Crash:
        pass
    store.fail_after = None
    restarted = _target(store)  # a new process: replays from the last committed batch
    for batch in batches[done:]:
        _write(restarted, batch)
    counts = _landed(store)
    assert len(counts) == 60, f"holes: {60 - len(counts)}"
    assert set(counts.values()) == {1}
    assert store.list_files(f"raw/{TEMPORARY}") == []


def test_a_failed_write_is_retried_in_process_with_a_different_batch_boundary() -> None:
    store = MemoryStore()
    target = _target(store)
    batch = [(0, o) for o in range(20)]
    store.fail_after = store.ops + 4  # three files written, then the store fails during the moves
    with pytest.raises(Crash):
        _write(target, batch)
    store.fail_after = None
    _write(target, [(0, o) for o in range(25)])  # the rewound batch comes back larger
    counts = _landed(store)
    assert len(counts) == 25 and set(counts.values()) == {1}


def test_assigned_partitions_are_recovered_ahead_of_their_first_batch() -> None:
    store = MemoryStore()
    first = _target(store)
    for batch in _batches(range(0, 10)):
        _write(first, batch)
    second = _target(store)
    second.assigned([("t", 0), ("t", 1)])
    assert second.next_offset == {("t", 0): 10, ("t", 1): 10}
    for batch in _batches(range(5, 15)):  # a replay across the recovered position
        _write(second, batch)
    assert set(_landed(store).values()) == {1} and len(_landed(store)) == 30


def test_a_failed_early_recovery_is_left_to_the_first_write() -> None:
    store = MemoryStore()
    for batch in _batches(range(0, 4)):
        _write(_target(store), batch)
    target = _target(store)
    store.fail_after = store.ops  # every further operation fails
    # an interrupted batch whose first file was already moved: recovery has to move the other one
    store.files[join("raw", TEMPORARY, "t", "0", "9+10", "dt=2026-11-02", "hour=07", "t+0+9+9.avro")] = b""
    store.files[join("raw", "t", "dt=2026-11-02", "hour=08", "t+0+10+10.avro")] = b""
    store.files[join("raw", TEMPORARY, "t", "0", "9+10", "dt=2026-11-02", "hour=08", "t+0+10+10.avro")] = b""
    with pytest.raises(Crash):
        target.assigned([("t", 0)])
    assert target.next_offset == {}
