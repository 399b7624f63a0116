"""The MongoDB target's write logic against a fake collection: inserts, replacements of replays, dead letters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest
from pymongo import ReplaceOne
from pymongo.errors import AutoReconnect, BulkWriteError

from services.common.sinks.records import SinkRecord
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import MongoTarget

T0 = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)


class FakeCollection:
    """Documents by _id; refuses documents whose ``bad`` field is set (code 2), like a server would."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.down = False

    def _errors(self, docs: list[dict[str, Any]], duplicates: bool) -> list[dict[str, Any]]:
        errors = []
        for index, doc in enumerate(docs):
            if doc.get("bad"):
                errors.append({"index": index, "code": 2, "errmsg": "bad value"})
            elif duplicates and doc["_id"] in self.docs:
                errors.append({"index": index, "code": 11000, "errmsg": "duplicate key"})
            else:
                self.docs[doc["_id"]] = doc
        return errors

    def insert_many(self, docs: list[dict[str, Any]], ordered: bool) -> None:
        assert not ordered
        if self.down:
            raise AutoReconnect("connection refused")
        self.calls.append(f"insert {len(docs)}")
        errors = self._errors(docs, duplicates=True)
        if errors:
            raise BulkWriteError({"writeErrors": errors})

    def bulk_write(self, ops: list[ReplaceOne[dict[str, Any]]], ordered: bool) -> None:
        assert not ordered
        self.calls.append(f"replace {len(ops)}")
        errors = self._errors([dict(op._doc) for op in ops], duplicates=False)
        if errors:
            raise BulkWriteError({"writeErrors": errors})


class FakeContext:
    def __init__(self) -> None:
        self.dead: list[tuple[int, str]] = []
        self.metrics = _Metrics()

    def dead_letter(self, message: Any, error: Any, error_type: str | None = None) -> None:
        self.dead.append((message.offset(), error_type or type(error).__name__))


class _Counter:
    def labels(self, *_: Any) -> _Counter:
        return self

    def inc(self, *_: Any) -> None:
        return None


class _Metrics:
    files_committed = records_written = bytes_written = _Counter()


class Msg:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def _msgs(offsets: Iterable[int]) -> Any:
    return [Msg(offset) for offset in offsets]


def _target(
    collection: FakeCollection, chunk_size: int = 3, replace_chunk_size: int = 16
) -> tuple[MongoTarget, FakeContext]:
    target = MongoTarget.__new__(MongoTarget)
    ctx = FakeContext()
    target.ctx = ctx  # type: ignore[assignment]
    target.settings = MongoSinkSettings(
        topics="t", collections="t=views", chunk_size=chunk_size, replace_chunk_size=replace_chunk_size
    )
    target.db = {"views": collection}  # type: ignore[assignment]
    target.chunk_size = chunk_size
    target._readers = {}
    from concurrent.futures import ThreadPoolExecutor

    target._writer = ThreadPoolExecutor(1)
    return target, ctx


def _record(offset: int, **fields: Any) -> SinkRecord:
    value = {"metadata": {"event_id": f"e{offset}", "event_time": T0}, "n": offset, **fields}
    return SinkRecord("t", 0, offset, None, 1, value, f"e{offset}", T0, b"x")


def test_new_documents_are_inserted_in_chunks() -> None:
    collection = FakeCollection()
    target, ctx = _target(collection)
    records = [_record(i) for i in range(7)]
    target.write(records, _msgs(range(7)))
    assert collection.calls == ["insert 3", "insert 3", "insert 1"]
    assert sorted(collection.docs) == [f"e{i}" for i in range(7)]
    assert collection.docs["e3"]["_kafka"] == {"topic": "t", "partition": 0, "offset": 3}
    assert ctx.dead == []


def test_a_replay_replaces_what_is_there_and_dead_letters_refused_documents() -> None:
    collection = FakeCollection()
    target, ctx = _target(collection, chunk_size=10)
    target.write([_record(i) for i in range(4)], _msgs(range(4)))
    replay = [_record(i, n=i * 10) for i in range(2, 6)] + [_record(6, bad=True)]
    target.write(replay, _msgs(range(2, 7)))
    assert collection.calls == ["insert 4", "insert 5", "replace 2"]
    assert len(collection.docs) == 6
    assert collection.docs["e2"]["n"] == 20 and collection.docs["e5"]["n"] == 50
    assert ctx.dead == [(6, "invalid_document")]


def test_replays_are_replaced_in_bounded_update_commands() -> None:
    collection = FakeCollection()
    target, ctx = _target(collection, chunk_size=10, replace_chunk_size=3)
    target.write([_record(i) for i in range(8)], _msgs(range(8)))
    replay = [_record(i, n=-i) for i in range(8)] + [_record(8, bad=True)]
    target.write(replay, _msgs(range(9)))
    assert collection.calls == ["insert 8", "insert 9", "replace 3", "replace 3", "replace 2"]
    assert all(collection.docs[f"e{i}"]["n"] == -i for i in range(8))
    assert ctx.dead == [(8, "invalid_document")]


def test_an_outage_raises_so_the_batch_is_retried() -> None:
    collection = FakeCollection()
    collection.down = True
    target, ctx = _target(collection)
    with pytest.raises(AutoReconnect):
        target.write([_record(0)], _msgs([0]))
    assert ctx.dead == []
