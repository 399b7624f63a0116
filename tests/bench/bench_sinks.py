"""Sinks: each sink end to end (Kafka -> decode -> target -> commit) against a raw client loop writing the same
data to the same target in the same run (pymongo bulk upserts; WebHDFS and GCS uploads of the same files).
Each sink runs with its default settings (batch sizes included)."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ReplaceOne

from schemas.catalogue import load_schema
from services.common.kafka import Producer, ensure_topics, producer_config
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
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_gcs.target import target_factory as gcs_factory
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.store import WebHdfsStore
from services.sink_hdfs.target import target_factory as hdfs_factory
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client
from services.sink_mongodb.target import target_factory as mongo_factory
from tests.bench.bench_common import VIEW, records

FILE_RECORDS = 200_000
MONGO_RECORDS = 100_000


def _produce(env: dict[str, str], n: int) -> tuple[str, list[bytes], AvroSerde, list[dict[str, Any]]]:
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    topic = f"bench.sinks.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.client_config(), [(topic, 3, {})])
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


def _row(name: str, value: float, baseline_name: str, baseline: float, goal: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 1),
        "unit": "records/s",
        "baseline_name": baseline_name,
        "baseline_value": round(baseline, 1),
        "ratio": round(value / baseline, 3) if baseline else None,
        "goal": goal,
    }


def bench_hdfs(env: dict[str, str]) -> dict[str, Any]:
    topic, values, serde, _ = _produce(env, FILE_RECORDS)
    hdfs = HdfsSettings(webhdfs_url=env["HDFS_WEBHDFS_URL"])
    root = f"/bench/{topic}"
    settings = HdfsSinkSettings(topics=topic, root=root, group_id=f"bench-{topic}")
    rate = _run_sink(env, "bench_sink_hdfs", settings, serde, hdfs_factory(settings, hdfs), FILE_RECORDS)
    store = WebHdfsStore(hdfs.webhdfs_url, hdfs.user)
    schema = serde.writer_schema(int.from_bytes(values[0][1:5], "big"))
    started = time.perf_counter()
    for i in range(0, len(values), 20_000):
        data = container_file(schema, [v[5:] for v in values[i : i + 20_000]])
        store.write(f"bench/raw-{topic}/part-{i}.avro", data)
    baseline = len(values) / (time.perf_counter() - started)
    return _row("sink_hdfs records/s", rate, "raw WebHDFS file writes of the same data", baseline, ">= 50000")


def bench_gcs(env: dict[str, str]) -> dict[str, Any]:
    topic, values, serde, _ = _produce(env, FILE_RECORDS)
    gcs = GcsSettings(endpoint=env["GCS_ENDPOINT"])
    bucket = env.get("GCS_BUCKET", "freightline-raw")
    settings = GcsSinkSettings(
        topics=topic,
        bucket=bucket,
        prefix=f"bench/{topic}",
        group_id=f"bench-{topic}",
        create_bucket=True,
    )
    rate = _run_sink(env, "bench_sink_gcs", settings, serde, gcs_factory(settings, gcs), FILE_RECORDS)
    store = GcsStore(gcs_client(gcs), bucket)
    schema = serde.writer_schema(int.from_bytes(values[0][1:5], "big"))
    started = time.perf_counter()
    for i in range(0, len(values), 20_000):
        data = container_file(schema, [v[5:] for v in values[i : i + 20_000]])
        store.write(f"bench/raw-{topic}/part-{i}.avro", data)
    baseline = len(values) / (time.perf_counter() - started)
    return _row("sink_gcs records/s", rate, "raw GCS object uploads of the same data", baseline, ">= 50000")


def bench_mongodb(env: dict[str, str]) -> dict[str, Any]:
    """The sink (insert first, replace the replays) against raw pymongo bulk upserts (``ReplaceOne(upsert=True)``)
    of exactly the documents it wrote, read back from its collection: the baseline starts from decoded documents,
    so it does less work than the sink. Same chunks (the sink's ``chunk_size`` per batch of calls, update commands
    of ``replace_chunk_size``: FerretDB v1 stalls on larger ones), same server, default write concern on both."""
    topic, _values, serde, _rows = _produce(env, MONGO_RECORDS)
    mongo = MongoSettings(uri=env["MONGODB_URI"])
    database = f"bench_{topic.replace('.', '_')}"
    settings = MongoSinkSettings(
        topics=topic, database=database, collections=f"{topic}=views", group_id=f"bench-{topic}"
    )
    rate = _run_sink(env, "bench_sink_mongodb", settings, serde, mongo_factory(settings, mongo), MONGO_RECORDS)
    client = mongo_client(mongo)
    try:
        docs = list(client[database]["views"].find({}))
        if len(docs) != MONGO_RECORDS:
            raise RuntimeError(f"the sink wrote {len(docs)} of {MONGO_RECORDS} documents")
        collection = client[database]["raw_views"]
        for name in settings.index_fields():
            collection.create_index(name)
        step = settings.replace_chunk_size
        started = time.perf_counter()
        for i in range(0, len(docs), settings.chunk_size):
            chunk = docs[i : i + settings.chunk_size]
            for j in range(0, len(chunk), step):
                collection.bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in chunk[j : j + step]], ordered=False
                )
        baseline = len(docs) / (time.perf_counter() - started)
        client.drop_database(database)
    finally:
        client.close()
    return _row(
        "sink_mongodb documents/s",
        rate,
        "raw pymongo bulk upserts of the same documents",
        baseline,
        f"MongoDB sink >= 1.0x raw bulk upserts: {'met' if rate >= baseline else 'not met'}",
    )


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    return [bench_mongodb(env), bench_hdfs(env), bench_gcs(env)]


if __name__ == "__main__":
    import json
    import os
    from pathlib import Path

    from tests.conftest import _read_env

    path = Path(os.environ.get("FREIGHTLINE_STACK_ENV", ".freightline/stack.env"))
    for result in run(_read_env(path)):
        print(json.dumps(result))
