"""MongoDB at production volume: load product-view documents shaped as the sink writes them (default 5,000,000,
``FREIGHTLINE_BENCH_MONGODB_DOCUMENTS``) into the stack's MongoDB server with unordered bulk inserts, sampling the
resident memory of the server (FerretDB) and of PostgreSQL under it, then time at that size a count of the collection
(the ``count`` command, ``estimated_document_count``: FerretDB streams it; ``count_documents`` is an aggregation whose
``$group`` FerretDB v1 holds in memory, 3 GB after 17 minutes at 5 million documents, which the launcher's wire proxy
now answers with the same ``count``) against
PostgreSQL counting the same table, and an ``_id`` lookup and an indexed equality query against the same
filters on a field no index covers (a full scan). Slow (tens of minutes at the default size): run it on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import psycopg
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, BulkWriteError

from deploy.local.settings import StackSettings
from services.common.settings import MongoSettings

RUN_ALONE = True  # not part of a plain `make bench`: `python -m tests.bench mongodb_volume`
DEFAULT_DOCUMENTS = 5_000_000
CHUNK = 1000
WRITERS = 2
GIB = 1024**3
START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def documents(start: int, count: int) -> list[dict[str, Any]]:
    """Product views as the MongoDB sink stores them (``_id`` = event id, ``_kafka`` coordinates)."""
    docs = []
    for i in range(start, start + count):
        event_id = str(uuid.UUID(int=i + 1))
        event_time = START + dt.timedelta(milliseconds=i * 20)
        docs.append(
            {
                "_id": event_id,
                "metadata": {
                    "event_id": event_id,
                    "event_time": event_time,
                    "ingest_time": event_time + dt.timedelta(milliseconds=360),
                    "producer": "storefront",
                    "trace_context": f"00-{i:032x}-{i % 65536:016x}-01",
                },
                "product_id": f"P-{i % 5000:05d}",
                "device_id": f"dev-{i % 100_000:06x}",
                "store_id": ("DE", "FR", "US", "GB")[i % 4],
                "referrer_url": "https://www.google.com/",
                "local_time": event_time.strftime("%Y-%m-%dT%H:%M:%S"),
                "remote_ip": f"203.0.{i % 256}.{i % 251}",
                "_kafka": {"topic": "web.product_views.v1", "partition": i % 3, "offset": i // 3},
            }
        )
    return docs


class MemorySampler:
    """Peak resident memory of a process (RSS) and of a process tree (sum of PSS: shared pages counted once)."""

    def __init__(self, ferretdb: psutil.Process, postgres: psutil.Process, interval: float = 2.0) -> None:
        self.ferretdb, self.postgres, self.interval = ferretdb, postgres, interval
        self.ferretdb_peak = 0
        self.postgres_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.ferretdb_peak = max(self.ferretdb_peak, self.ferretdb.memory_info().rss)
        total = 0
        for process in [self.postgres, *self.postgres.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except psutil.Error:  # a backend that just exited
                continue
        self.postgres_peak = max(self.postgres_peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sample()


def _listener(port: int) -> psutil.Process:
    for connection in psutil.net_connections("tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr[1:2] == (port,) and connection.pid:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on port {port}")


def _load(collection: Collection[dict[str, Any]], total: int, progress: Callable[[str], None]) -> float:
    def chunks() -> Iterator[tuple[int, int]]:
        for start in range(0, total, CHUNK):
            yield start, min(CHUNK, total - start)

    def write(span: tuple[int, int]) -> int:
        docs = documents(*span)
        for attempt in range(3):
            try:
                collection.insert_many(docs, ordered=False)
                break
            except AutoReconnect:  # a write lost on the way: write it again (the documents already in are kept)
                if attempt == 2:
                    raise
            except BulkWriteError as error:
                if any(item["code"] != 11000 for item in error.details["writeErrors"]):
                    raise
                break
        return len(docs)

    started = time.perf_counter()
    written = 0
    with ThreadPoolExecutor(WRITERS) as pool:
        for count in pool.map(write, chunks()):
            written += count
            if written % 250_000 == 0:
                progress(f"{written:,} documents, {written / (time.perf_counter() - started):,.0f}/s")
    return time.perf_counter() - started


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _index_used(collection: Collection[dict[str, Any]], query: dict[str, Any]) -> str:
    """The name of the PostgreSQL index FerretDB's plan scans for ``query`` ('' if none)."""
    plan = collection.database.command("explain", {"find": collection.name, "filter": query})["queryPlanner"]

    def names(node: dict[str, Any]) -> Iterator[str]:
        if "Index Name" in node:
            yield str(node["Index Name"])
        for child in node.get("Plans", []):
            yield from names(child)

    return ",".join(names(plan.get("Plan", {})))


def _row(name: str, value: float, unit: str, baseline_name: str, baseline: float, goal: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline, 3),
        "ratio": round(value / baseline, 3) if baseline else 0.0,
        "goal": goal,
    }


def run(env: dict[str, str], progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    total = int(os.environ.get("FREIGHTLINE_BENCH_MONGODB_DOCUMENTS", DEFAULT_DOCUMENTS))
    mongo = MongoSettings.from_mapping(env)
    database = f"bench_volume_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, Any]] = MongoClient(mongo.uri, socketTimeoutMS=1_800_000, tz_aware=True)
    pg_port = int(env["POSTGRES_DSN"].rsplit(":", 1)[1].split("/", 1)[0])
    ferretdb = _listener(int(mongo.uri.rsplit(":", 1)[1]))
    postgres = _listener(pg_port)
    try:
        views = client[database]["product_views"]
        views.create_index("product_id")
        views.create_index("metadata.event_time")  # the sink's default index, maintained during the load
        with MemorySampler(ferretdb, postgres) as memory:
            load_s = _load(views, total, progress)
            count_s, counted = _timed(views.estimated_document_count)
            if counted != total:
                raise RuntimeError(f"the count command returned {counted}, {total} were inserted")
        probe = documents(total // 2, 1)[0]
        lookup_s, found = _timed(lambda: views.find_one({"_id": probe["_id"]}))
        unindexed = {"remote_ip": probe["remote_ip"], "_kafka": probe["_kafka"]}
        scan_lookup_s, scanned = _timed(lambda: views.find_one(unindexed))
        if found is None or scanned is None or found["_id"] != scanned["_id"]:
            raise RuntimeError("the _id lookup and the full scan disagree")
        query_s, matched = _timed(lambda: len(list(views.find({"product_id": probe["product_id"]}))))
        scan_query_s, scan_matched = _timed(lambda: len(list(views.find({"referrer_url": "none", "x": None}))))
        id_index = _index_used(views, {"_id": probe["_id"]})
        product_index = _index_used(views, {"product_id": probe["product_id"]})
        ferretdb_dsn = f"{env['POSTGRES_DSN'].rsplit('/', 1)[0]}/{StackSettings().mongodb_database}"
        with psycopg.connect(ferretdb_dsn) as conn:
            table = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'product_views%%'",
                (database,),
            ).fetchone()
            assert table is not None
            pg_count_s, _ = _timed(lambda: conn.execute(f'SELECT count(*) FROM "{database}"."{table[0]}"').fetchone())
    finally:
        client.drop_database(database)
        client.close()
    progress(
        f"{total:,} documents loaded in {load_s:,.0f}s ({total / load_s:,.0f}/s); FerretDB peak RSS "
        f"{memory.ferretdb_peak / 2**20:,.0f} MiB, PostgreSQL peak PSS {memory.postgres_peak / 2**20:,.0f} MiB; "
        f"count {count_s:.1f}s, _id lookup {lookup_s * 1000:.1f} ms (index {id_index or 'none'}), "
        f"product_id query {query_s * 1000:.1f} ms for {matched} documents (index {product_index or 'none'}), "
        f"full-scan lookup {scan_lookup_s:.1f}s, full-scan query {scan_query_s:.1f}s ({scan_matched} documents)"
    )
    met = "met" if memory.ferretdb_peak < GIB else "not met"
    pg_met = "met" if memory.postgres_peak < GIB else "not met"
    return [
        _row(
            f"mongodb peak RSS of FerretDB at {total:,} documents",
            memory.ferretdb_peak / 2**20,
            "MiB",
            "the 1 GiB bound",
            1024,
            f"RSS < 1 GiB: {met}",
        ),
        _row(
            f"mongodb peak PSS of PostgreSQL (all its processes) at {total:,} documents",
            memory.postgres_peak / 2**20,
            "MiB",
            "the 1 GiB bound",
            1024,
            f"PSS < 1 GiB: {pg_met}",
        ),
        _row(
            f"mongodb load of {total:,} documents",
            total / load_s,
            "documents/s",
            "none (recorded)",
            0.0,
            "recorded",
        ),
        _row(
            f"mongodb count command (estimated_document_count) at {total:,} documents",
            count_s,
            "s",
            "PostgreSQL count(*) of the same table",
            pg_count_s,
            "recorded (FerretDB streams every document to count)",
        ),
        _row(
            f"mongodb _id lookup at {total:,} documents",
            lookup_s * 1000,
            "ms",
            "the same document found by a full scan",
            scan_lookup_s * 1000,
            f"index scan ({id_index or 'NO INDEX'}): {'met' if id_index else 'not met'}",
        ),
        _row(
            f"mongodb indexed equality query (product_id, {matched} documents) at {total:,} documents",
            query_s * 1000,
            "ms",
            "a query no index covers (full scan)",
            scan_query_s * 1000,
            f"index scan ({product_index or 'NO INDEX'}): {'met' if product_index else 'not met'}",
        ),
    ]


if __name__ == "__main__":
    import json
    from pathlib import Path

    from tests.conftest import _read_env

    path = Path(os.environ.get("FREIGHTLINE_STACK_ENV", ".freightline/stack.env"))
    for result in run(_read_env(path)):
        print(json.dumps(result))
