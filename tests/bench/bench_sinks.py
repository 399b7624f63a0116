"""Sinks: each sink end to end (Kafka -> decode -> target -> commit) against a raw client loop doing the same
work in the same run (pymongo bulk upserts; for HDFS and GCS a loop that consumes the same records from Kafka,
writes the same Avro container files with HdfsCLI / google-cloud-storage and commits after each batch).
Each sink runs with its default settings (batch sizes included). Goals: HDFS and GCS >= 0.5x their raw loop
(alternated with it, the best of two runs each).
``python -m tests.bench.bench_sinks [hdfs|gcs|mongodb ...]``."""

from __future__ import annotations

import gc
import posixpath
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer as RawConsumer
from confluent_kafka import TopicPartition
from hdfs import InsecureClient
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from schemas.catalogue import load_schema
from services.common.kafka import Producer, consumer_config, ensure_topics, producer_config
from services.common.lifecycle import Shutdown
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import (
    GcsSettings,
    HdfsSettings,
    KafkaSettings,
    MongoSettings,
    SchemaRegistrySettings,
    ServiceSettings,
)
from services.common.sinks.files import container_file
from services.common.sinks.runner import SinkContext, SinkRunner, SinkTarget
from services.common.sinks.settings import SinkSettings
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.store import gcs_client
from services.sink_gcs.target import target_factory as gcs_factory
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.target import target_factory as hdfs_factory
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client
from services.sink_mongodb.target import target_factory as mongo_factory
from tests.bench.bench_common import VIEW, records
from tests.bench.rows import row as ratio_row

FILE_RECORDS = 200_000
FILE_GOAL = 0.5
MONGO_GOAL = 1.0
MONGO_BOUND = (
    "both sides are bound by the server's insert rate (FerretDB over PostgreSQL, on the same cores): the sink "
    "decodes and converts each chunk while the previous one is written, and adds consuming and committing"
)
FILE_BOUND = (
    "The file work costs the same on both sides; the sink also checks every body against its writer schema "
    "(avro_validate, about 40% of the sink thread's py-spy samples) and builds a SinkRecord per record."
)
FILE_PARALLELISM = 4  # FileSinkTarget's default upload parallelism
MONGO_RECORDS = 100_000


def _produce(env: dict[str, str], n: int) -> tuple[str, list[bytes], AvroSerde, list[dict[str, Any]]]:
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    topic = f"bench.sinks.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, [(topic, 3, {})])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), load_schema(VIEW))
    rows = records(VIEW, n)
    values = [encoder.encode(r) for r in rows]
    producer = Producer(producer_config(kafka, "bench-sinks"))
    for row, value in zip(rows, values, strict=True):
        producer.produce(topic, value, row["product_id"])
    producer.flush(120)
    return topic, values, serde, rows


def _run_sink(
    env: dict[str, str],
    name: str,
    settings: SinkSettings,
    serde: AvroSerde,
    factory: Callable[[SinkContext], SinkTarget],
    n: int,
) -> float:
    gc.collect()
    gc.freeze()  # the bench's own data (produced rows and payloads) is not the sink's heap: keep it out of the GC
    shutdown = Shutdown()
    service = ServiceSettings(service_name=name, metrics_port=0)
    runner = SinkRunner(
        service,
        settings,
        KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]),
        serde,
        factory,
        shutdown=shutdown,
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not runner.loop.assignment and time.monotonic() < deadline:  # group join is not throughput
        time.sleep(0.01)
    started = time.perf_counter()
    while runner.loop.processed < n and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    shutdown.request("bench done")
    thread.join(60)
    gc.unfreeze()
    if runner.loop.processed < n:
        raise RuntimeError(f"{name} processed {runner.loop.processed} of {n}")
    return n / elapsed


def _raw_file_loop(
    env: dict[str, str],
    topic: str,
    settings: HdfsSinkSettings | GcsSinkSettings,
    schema: Any,
    write: Callable[[str, bytes], None],
    move: Callable[[str, str], None],
    n: int,
    run: int,
) -> float:
    """The file sinks' work with the raw clients: consume the same records with the same consumer settings and
    batch size, write per batch one Avro container file per partition and hour (same codec, same blocks, same
    rotation) to a temporary name, ``parallelism`` uploads at a time, move each to its final name, then commit
    the batch asynchronously (as ``ConsumerLoop`` does). Same GC settings as ``_run_sink``. Records/s from the
    partition assignment to the n-th committed record."""
    gc.collect()
    gc.freeze()
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    consumer = RawConsumer(
        {
            **consumer_config(kafka, f"bench-raw-{uuid.uuid4().hex[:8]}", "bench-raw-files"),
            **settings.consumer_overrides(),
        }
    )
    assigned = threading.Event()
    consumer.subscribe([topic], on_assign=lambda _c, _p: assigned.set())
    pool = ThreadPoolExecutor(FILE_PARALLELISM)
    root = f"bench/raw-{run}-{topic}"
    done = 0
    started: float | None = None
    try:
        while done < n:
            messages = consumer.consume(settings.batch_size, settings.batch_timeout_s)
            if started is None and assigned.is_set():
                started = time.perf_counter()
            if not messages:
                continue
            groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
            for message in messages:
                hour = time.strftime("dt=%Y-%m-%d/hour=%H", time.gmtime(message.timestamp()[1] // 1000))
                groups[(message.partition() or 0, hour)].append(message)
            files = []
            for (partition, hour), group in groups.items():
                for i in range(0, len(group), settings.max_file_records):
                    part = group[i : i + settings.max_file_records]
                    name = f"{topic}+{partition}+{part[0].offset()}+{part[-1].offset()}.avro"
                    data = container_file(schema, [m.value()[5:] for m in part], settings.codec)
                    files.append((f"{root}/_temporary/{partition}/{hour}/{name}", f"{root}/{hour}/{name}", data))
            list(pool.map(lambda f: write(f[0], f[2]), files))
            list(pool.map(lambda f: move(f[0], f[1]), files))
            highest: dict[int, int] = {}
            for message in messages:
                highest[message.partition() or 0] = max(
                    highest.get(message.partition() or 0, -1), message.offset() or 0
                )
            consumer.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in highest.items()], asynchronous=True)
            done += len(messages)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        pool.shutdown()
        consumer.close()
        gc.unfreeze()
    return n / elapsed


def _alternated(sink: Callable[[int], float], raw: Callable[[int], float]) -> tuple[float, float]:
    """(sink rate, raw rate): raw, sink, raw, sink, each into a fresh root and group, the best of two each (the
    machine's load drifts during a run)."""
    baseline = raw(1)
    rate = sink(1)
    baseline = max(baseline, raw(2))
    return max(rate, sink(2)), baseline


def bench_hdfs(env: dict[str, str]) -> dict[str, Any]:
    topic, values, serde, _ = _produce(env, FILE_RECORDS)
    hdfs = HdfsSettings(webhdfs_url=env["HDFS_WEBHDFS_URL"])
    root = f"/bench/{topic}"
    settings = HdfsSinkSettings(topics=topic, root=root, group_id=f"bench-{topic}")

    def sink(run: int) -> float:
        each = settings.model_copy(update={"root": f"{root}-{run}", "group_id": f"bench-{topic}-{run}"})
        return _run_sink(env, "bench_sink_hdfs", each, serde, hdfs_factory(each, hdfs), FILE_RECORDS)

    client = InsecureClient(hdfs.webhdfs_url, user=hdfs.user)
    schema = serde.writer_schema(int.from_bytes(values[0][1:5], "big"))
    made: set[str] = set()

    def move(source: str, target: str) -> None:
        directory = posixpath.dirname("/" + target)
        if directory not in made:
            client.makedirs(directory)
            made.add(directory)
        client.rename("/" + source, "/" + target)

    def raw(run: int) -> float:
        def write(path: str, data: bytes) -> None:
            client.write("/" + path, data=data, overwrite=True)

        return _raw_file_loop(env, topic, settings, schema, write, move, FILE_RECORDS, run)

    rate, baseline = _alternated(sink, raw)
    return ratio_row(
        "sink_hdfs records/s",
        rate,
        "records/s",
        "raw loop: consume, same Avro files via HdfsCLI (write, rename), async commit",
        baseline,
        FILE_GOAL,
        bound=FILE_BOUND,
    )


def bench_gcs(env: dict[str, str]) -> dict[str, Any]:
    topic, values, serde, _ = _produce(env, FILE_RECORDS)
    gcs = GcsSettings.from_mapping(env)
    bucket_name = env.get("GCS_BUCKET", "freightline-raw")
    settings = GcsSinkSettings(
        topics=topic,
        bucket=bucket_name,
        prefix=f"bench/{topic}",
        group_id=f"bench-{topic}",
        create_bucket=True,
    )

    def sink(run: int) -> float:
        each = settings.model_copy(update={"prefix": f"bench/{topic}-{run}", "group_id": f"bench-{topic}-{run}"})
        return _run_sink(env, "bench_sink_gcs", each, serde, gcs_factory(each, gcs), FILE_RECORDS)

    bucket = gcs_client(gcs).bucket(bucket_name)
    schema = serde.writer_schema(int.from_bytes(values[0][1:5], "big"))

    def write(path: str, data: bytes) -> None:
        bucket.blob(path).upload_from_string(data, content_type="application/avro", retry=None)

    def move(source: str, target: str) -> None:  # the sink's commit: existence check, guarded copy, delete
        if not bucket.blob(target).exists(retry=None):
            bucket.copy_blob(bucket.blob(source), bucket, target, if_generation_match=0, retry=None)
        bucket.blob(source).delete(retry=None)

    def raw(run: int) -> float:
        return _raw_file_loop(env, topic, settings, schema, write, move, FILE_RECORDS, run)

    rate, baseline = _alternated(sink, raw)
    return ratio_row(
        "sink_gcs records/s",
        rate,
        "records/s",
        "raw loop: consume, same Avro files via google-cloud-storage (upload, guarded copy), async commit",
        baseline,
        FILE_GOAL,
        bound=FILE_BOUND,
    )


def bench_mongodb(env: dict[str, str]) -> dict[str, Any]:
    """The sink against raw pymongo writing exactly the documents it wrote (read back from its collection) the
    way the sink upserts: ``insert_many(ordered=False)`` per chunk of ``chunk_size``, replacing (``ReplaceOne``,
    ``upsert=True``, in update commands of ``replace_chunk_size``) the documents already there. Both sides
    start on an empty collection with the same indexes, so both insert every document and replace none: the
    same operation, on the same server, with the default write concern. The baseline starts from decoded
    documents, so it does less work than the sink. Sink, raw, sink, raw, each on a fresh database, the best of
    two each (the machine's load drifts during a run)."""
    topic, _values, serde, _rows = _produce(env, MONGO_RECORDS)
    mongo = MongoSettings.from_mapping(env)
    client = mongo_client(mongo)
    docs: list[dict[str, Any]] = []
    databases: list[str] = []

    def sink(run: int) -> float:
        database = f"bench_{topic.replace('.', '_')}_{run}"
        databases.append(database)
        settings = MongoSinkSettings(
            topics=topic, database=database, collections=f"{topic}=views", group_id=f"bench-{topic}-{run}"
        )
        rate = _run_sink(env, "bench_sink_mongodb", settings, serde, mongo_factory(settings, mongo), MONGO_RECORDS)
        if not docs:
            docs.extend(client[database]["views"].find({}))
            if len(docs) != MONGO_RECORDS:
                raise RuntimeError(f"the sink wrote {len(docs)} of {MONGO_RECORDS} documents")
        return rate

    def raw(run: int) -> float:
        settings = MongoSinkSettings(topics=topic, group_id="unused")
        database = f"bench_{topic.replace('.', '_')}_raw_{run}"
        databases.append(database)
        collection = client[database]["views"]
        for name in settings.index_fields():
            collection.create_index(name)
        started = time.perf_counter()
        replaced = 0
        for i in range(0, len(docs), settings.chunk_size):
            replaced += _raw_upsert(collection, docs[i : i + settings.chunk_size], settings.replace_chunk_size)
        rate = len(docs) / (time.perf_counter() - started)
        if replaced or collection.estimated_document_count() != len(docs):
            raise RuntimeError(f"the raw loop replaced {replaced} documents: it did not start on an empty collection")
        return rate

    try:
        rate = sink(1)
        baseline = raw(1)
        rate = max(rate, sink(2))
        baseline = max(baseline, raw(2))
    finally:
        for database in databases:
            client.drop_database(database)
        client.close()
    return ratio_row(
        "sink_mongodb documents/s",
        rate,
        "documents/s",
        "raw pymongo upserts of the same documents as the sink does them (unordered insert, duplicates replaced)",
        baseline,
        MONGO_GOAL,
        bound=MONGO_BOUND,
    )


def _raw_upsert(collection: Any, docs: list[dict[str, Any]], step: int) -> int:
    """Upsert ``docs``: insert them unordered, replace those whose ``_id`` is already there; returns how many
    were replaced."""
    try:
        collection.insert_many(docs, ordered=False)
        return 0
    except BulkWriteError as error:
        existing = [item["index"] for item in (error.details or {}).get("writeErrors", []) if item.get("code") == 11000]
    for j in range(0, len(existing), step):
        collection.bulk_write(
            [ReplaceOne({"_id": docs[i]["_id"]}, docs[i], upsert=True) for i in existing[j : j + step]], ordered=False
        )
    return len(existing)


BENCHES: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "hdfs": bench_hdfs,
    "gcs": bench_gcs,
    "mongodb": lambda env: bench_mongodb(env),
}


def run(env: dict[str, str], only: list[str] | None = None) -> list[dict[str, Any]]:
    """A row per sink; a sink whose bench fails (a timeout on an overloaded machine) gives a row that says so,
    unmet, and the others still report."""
    rows = []
    for name in only or list(BENCHES):
        try:
            rows.append(BENCHES[name](env))
        except Exception as error:
            traceback.print_exc()
            goal = MONGO_GOAL if name == "mongodb" else FILE_GOAL
            failed = ratio_row(f"sink_{name}", float("nan"), "-", "its raw loop", float("nan"), goal)
            failed["note"] = f"the bench failed: {error!r}"
            rows.append(failed)
    return rows


if __name__ == "__main__":
    import json
    import os
    import sys
    from pathlib import Path

    from tests.conftest import _read_env

    path = Path(os.environ.get("FREIGHTLINE_STACK_ENV", ".freightline/stack.env"))
    for result in run(_read_env(path), sys.argv[1:]):
        print(json.dumps(result))
