"""On real HDFS, the file target leaves no temporary directories behind: each batch's emptied directory is removed
after its moves, and recovery removes what earlier batches left, so a restart lists only work in flight."""

from __future__ import annotations

import datetime as dt
import io
import posixpath
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro

from services.common.serde import AvroSerde, registry_client
from services.common.settings import SchemaRegistrySettings
from services.common.sinks.files import TEMPORARY, FileSinkTarget, committed_files, join
from services.common.sinks.records import SinkRecord
from services.common.sinks.runner import SinkMetrics
from services.sink_hdfs.store import WebHdfsStore

SCHEMA = {"type": "record", "name": "TemporaryProbe", "fields": [{"name": "id", "type": "string"}]}
T0 = dt.datetime(2026, 11, 2, 7, 59, 50, tzinfo=dt.UTC)
TOPIC = "t"


@dataclass
class Context:
    """The part of ``SinkContext`` a file target uses when no record is dead-lettered."""

    serde: AvroSerde
    metrics: SinkMetrics

    def flush_dead_letters(self, timeout: float = 60.0) -> None:
        return None


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def _directories(store: WebHdfsStore, path: str) -> list[str]:
    """Every directory below ``path`` (empty when ``path`` does not exist)."""
    top = store._abs(path)
    if store.client.status(top, strict=False) is None:
        return []
    return [posixpath.join(d, name) for d, names, _ in store.client.walk(top) for name in names]


def test_batches_and_recovery_leave_no_temporary_directories(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    store = WebHdfsStore(stack_env["HDFS_WEBHDFS_URL"], "freightline", base=f"/tests/{unique_name('tmpdirs')}")
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(unique_name("temporary-probe"), SCHEMA)

    def record(partition: int, offset: int) -> SinkRecord:
        body = encoder.encode({"id": f"{partition}-{offset}"})[5:]
        at = T0 + dt.timedelta(seconds=offset)
        return SinkRecord(TOPIC, partition, offset, None, encoder.schema_id, None, f"{partition}-{offset}", at, body)

    def target() -> FileSinkTarget:
        context: Any = Context(serde, SinkMetrics(unique_name("sink")))
        return FileSinkTarget(store, context, root="raw", max_file_records=7)

    # What earlier batches left: emptied batch directories below both partitions' temporary directories.
    for partition in (0, 1):
        for earlier in ("0+9", "10+19"):
            store.client.makedirs(store._abs(join("raw", TEMPORARY, TOPIC, str(partition), earlier, "dt=2026-11-02")))
    assert len(_directories(store, join("raw", TEMPORARY))) == 1 + 2 + 4 + 4

    first = target()
    first.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert _directories(store, join("raw", TEMPORARY, TOPIC)) == []
    assert first.next_offset == {(TOPIC, 0): 0, (TOPIC, 1): 0}

    for start in range(0, 30, 10):  # three batches of both partitions, across an hour boundary
        batch = [(p, o) for o in range(start, start + 10) for p in (0, 1)]
        messages: Any = [Message(p, o) for p, o in batch]
        first.write([record(p, o) for p, o in batch], messages)
    first.close()  # waits for the background removals
    # one directory per partition stays (its batches come and go below it), nothing below it
    partitions = [store._abs(join("raw", TEMPORARY, TOPIC, str(p))) for p in (0, 1)]
    assert sorted(_directories(store, join("raw", TEMPORARY, TOPIC))) == partitions

    landed: Counter[str] = Counter()
    for item in committed_files(store, "raw", TOPIC):
        landed.update(str(row["id"]) for row in fastavro.reader(io.BytesIO(store.read(item.path))))  # type: ignore[call-overload,index]
    assert len(landed) == 60 and set(landed.values()) == {1}

    second = target()
    second.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert second.next_offset == {(TOPIC, 0): 30, (TOPIC, 1): 30}
    second.close()
