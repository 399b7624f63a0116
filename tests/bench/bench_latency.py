"""Latency per hop of the running pipeline, paced, against a raw confluent-kafka produce -> consume hop.

The mirror, the enricher and the three sinks run as processes (``deploy.processes.ServiceProcess``, as the main
job starts them), each in its own consumer group that starts at the current end of its topics. The generator
then runs paced at about 1,000 events/s for ``DURATION_S``; records of the first ``WARMUP_S`` are not measured
(the generator's reference snapshot lands in the enricher's tables then; ``timeline.json`` in the run's log
directory keeps every view's ingest -> enriched latency by ingest time). Beside it, in the same run, a raw
confluent-kafka producer sends 1,000 records/s (the same durable producer settings) to a topic of its own: the
floor.

One observer thread consumes every measured topic from its end and stamps each record with its own clock
when it becomes readable; a MongoDB reader polls for the documents and a store reader lists the file sinks'
committed files. The hops, all on this machine's clock:

- remote produce -> mirrored: the mirrored record readable locally, minus its ``metadata.ingest_time`` (the
  generator's clock at send time);
- mirrored -> enriched: the enriched record readable, minus its mirrored source record readable (matched by the
  enriched event id, derived from the source's);
- ingest -> enriched: the two together (the issue's goal: p50 <= 20 ms, p99 <= 100 ms);
- raw -> MongoDB durable: the document first seen by a reader, minus the raw record readable (goal p99 <= 1 s);
- raw -> HDFS / GCS file durable: the committed file first listed, minus the raw record readable (goal: every
  record within the rotation interval plus 1 s);
- floor: the raw hop, readable minus the producer's timestamp.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import Producer as RawProducer

from deploy.processes import (
    ServiceProcess,
    commit_end_offsets,
    ensure_catalogue_topics,
    group_members,
    local_client_config,
    remote_client_config,
    wait_until,
)
from services.common.kafka import ensure_topics, producer_config
from services.common.settings import GcsSettings, HdfsSettings, KafkaSettings, MongoSettings
from services.common.sinks.files import FileStore, committed_files
from services.common.sinks.records import read_metadata_prefix, read_metadata_times
from services.common.sinks.settings import FILE_ROTATION_INTERVAL_S
from services.enricher import join
from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS
from services.mirror.settings import MirrorSettings
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.store import WebHdfsStore
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client

DURATION_S = 60.0
RATE = 1000.0
# About 1,000 events/s in all (measured: views 600/s, clickstream 300/s, order and shipment events about 80/s,
# finance events about 10/s).
GENERATOR_RATES = {
    "GENERATOR_RATE_PRODUCT_VIEWS": "600",
    "GENERATOR_RATE_CLICKSTREAM": "300",
    "GENERATOR_RATE_ORDERS": "32",
    "GENERATOR_RATE_SUPPLIER_INVOICES": "8",
}
# The first seconds are not measured: the generator's reference snapshot lands in the enricher's tables then, and
# every process warms up (the measured run is the DURATION_S - WARMUP_S after it; timeline.json has it all).
WARMUP_S = 15.0
MONGO_SAMPLE = 10  # every 10th view is looked for in MongoDB (about 60 a second)
MONGO_LOOKUPS_PER_PROBE = 100
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))
FLOOR = "raw confluent-kafka produce -> consume (floor)"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(math.ceil(q * len(sorted_values)) - 1, 0)
    return sorted_values[min(index, len(sorted_values) - 1)]


class Observer:
    """Stamps every record of the measured topics with this process's clock when it becomes readable."""

    def __init__(self, config: dict[str, Any], topics: list[str]) -> None:
        self.consumer = Consumer(
            {**config, "group.id": f"bench-latency-observer-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
        self.topics = list(dict.fromkeys(topics))  # a topic measured by several hops is assigned once
        self.seen: dict[str, list[tuple[float, Any]]] = {topic: [] for topic in self.topics}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="observer", daemon=True)

    def start(self) -> None:
        """Assign every partition at its current end, then consume in the background."""
        metadata = self.consumer.list_topics(timeout=15)
        assignment = []
        for topic in self.topics:
            for p in metadata.topics[topic].partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                assignment.append(TopicPartition(topic, p, high))
        self.consumer.assign(assignment)
        self.thread.start()

    def _run(self) -> None:
        consume, poll = self.consumer.consume, self.consumer.poll
        while not self.stop.is_set():
            first = poll(0.05)  # returns as soon as a record is readable (consume(n, t) would wait out t)
            if first is None:
                continue
            messages = [first, *consume(10_000, 0)]
            now = time.time() * 1000
            for message in messages:
                if message.error() is None:
                    self.seen[message.topic() or ""].append((now, message))
        self.consumer.close()

    def close(self) -> None:
        self.stop.set()
        if self.thread.ident is None:
            self.consumer.close()
        else:
            self.thread.join(30)


class Poller:
    """Calls ``probe`` every ``interval_s`` in the background (until closed)."""

    def __init__(self, probe: Callable[[float], None], interval_s: float) -> None:
        self.probe = probe
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                self.probe(time.time() * 1000)
            except Exception as error:  # a busy target: the next probe tries again
                self.errors.append(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


class FileWatch:
    """First time each committed file of ``topics`` under ``root`` is listed, by (topic, partition, offset)."""

    def __init__(self, store: FileStore, root: str, topics: list[str]) -> None:
        self.store = store
        self.root = root
        self.topics = topics
        self.known: set[str] = set()
        self.durable: dict[tuple[str, int, int], float] = {}

    def probe(self, now: float) -> None:
        for topic in self.topics:
            for committed in committed_files(self.store, self.root, topic):
                if committed.path in self.known:
                    continue
                self.known.add(committed.path)
                for offset in range(committed.start, committed.end + 1):
                    self.durable.setdefault((topic, committed.partition, offset), now)


class MongoWatch:
    """First time a reader finds the document of each sampled raw record the observer saw: every
    ``MONGO_SAMPLE``-th view, looked up by ``_id`` equality, which the MongoDB server pushes down to its primary key
    (FerretDB evaluates ``{"_id": {"$in": [...]}}`` by reading the whole collection: at ten probes a second the
    reader would load the machine whose latency it measures)."""

    def __init__(self, collection: Any, raw: list[tuple[float, Any]]) -> None:
        self.collection = collection
        self.raw = raw  # the observer's list of the raw topic (appended by its thread)
        self.read = 0
        self.sampled: set[str] = set()
        self.pending: dict[str, None] = {}
        self.durable: dict[str, float] = {}

    def probe(self, now: float) -> None:
        new, start, self.read = self.raw[self.read : len(self.raw)], self.read, len(self.raw)
        for index, (_, message) in enumerate(new, start):
            if index % MONGO_SAMPLE == 0:
                event_id = read_metadata_prefix(message.value())[0]
                self.sampled.add(event_id)
                self.pending[event_id] = None
        for event_id in list(self.pending)[:MONGO_LOOKUPS_PER_PROBE]:
            if self.collection.find_one({"_id": event_id}, {"_id": 1}) is not None:
                del self.pending[event_id]
                self.durable[event_id] = now

    def landed(self) -> bool:
        return not self.pending and len(self.durable) >= len(self.sampled)


def floor_producer(config: dict[str, Any], topic: str, stop: threading.Event) -> int:
    """A raw confluent-kafka producer paced at ``RATE`` records/s, timestamped with its clock at produce time."""
    producer = RawProducer(config)
    sent = 0
    started = time.monotonic()
    payload = b"x" * 200
    while not stop.is_set():
        ahead = started + sent / RATE - time.monotonic()
        if ahead > 0.001:
            time.sleep(ahead)
        producer.produce(topic, payload, timestamp=int(time.time() * 1000))
        producer.poll(0)
        sent += 1
    producer.flush(30)
    return sent


def _rows(
    hop: str, samples: list[float], floor: list[float], goals: dict[str, tuple[float, str]]
) -> list[dict[str, Any]]:
    values = sorted(samples)
    floor_values = sorted(floor)
    rows = []
    for label, q in PERCENTILES:
        value = percentile(values, q) if values else float("nan")
        base = percentile(floor_values, q) if floor_values else float("nan")
        bound, text = goals.get(label, (math.inf, "-"))
        rows.append(
            {
                "name": f"latency {hop} {label}",
                "value": round(value, 1),
                "unit": "ms",
                "baseline_name": f"{FLOOR} {label}",
                "baseline_value": round(base, 1),
                "ratio": round(value / base, 2) if values and base else None,
                "goal": text,
                "met": None if text == "-" else bool(values) and value <= bound,
                "samples": len(values),
            }
        )
    return rows


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    local, remote = local_client_config(env), remote_client_config(env)
    logs = Path(tempfile.mkdtemp(prefix=f"bench-latency-{run_id}-"))
    mirror = MirrorSettings()
    remote_topic = mirror.source_topics()[0]
    mirrored = mirror.destination(remote_topic)
    enriched = OUTPUT_TOPICS[join.PRODUCT_VIEWS]
    mongo_sink, hdfs_sink, gcs_sink = MongoSinkSettings(), HdfsSinkSettings(), GcsSinkSettings()
    hdfs_topics, gcs_topics = hdfs_sink.topic_list(), gcs_sink.topic_list()
    floor_topic = f"bench-latency-floor-{run_id}"
    ensure_catalogue_topics(env)  # subscriptions find their topics at once
    ensure_topics(KafkaSettings.from_client_config(local), [(floor_topic, 3, {"retention.ms": "3600000"})])
    groups = {
        "mirror": f"bench-latency-mirror-{run_id}",
        "enricher": f"bench-latency-enricher-{run_id}",
        "mongodb": f"bench-latency-mongodb-{run_id}",
        "hdfs": f"bench-latency-hdfs-{run_id}",
        "gcs": f"bench-latency-gcs-{run_id}",
    }
    # Every group starts at the end of its topics: this run's records, not the history.
    commit_end_offsets(remote, groups["mirror"], [remote_topic])
    commit_end_offsets(local, groups["enricher"], list(SOURCE_TOPICS.values()))
    commit_end_offsets(local, groups["mongodb"], mongo_sink.topic_list())
    commit_end_offsets(local, groups["hdfs"], hdfs_topics)
    commit_end_offsets(local, groups["gcs"], gcs_topics)
    database = f"bench_latency_{run_id}"
    hdfs_root, gcs_prefix = f"/bench/latency-{run_id}", f"bench/latency-{run_id}"
    services = [
        ServiceProcess("services.mirror", env, logs / "mirror.log", MIRROR_GROUP_ID=groups["mirror"]),
        ServiceProcess(
            "services.enricher",
            env,
            logs / "enricher.log",
            ENRICHER_APP_ID=groups["enricher"],
            ENRICHER_DATA_DIR=str(logs / "enricher-data"),
        ),
        ServiceProcess(
            "services.sink_mongodb",
            env,
            logs / "sink_mongodb.log",
            SINK_MONGODB_GROUP_ID=groups["mongodb"],
            SINK_MONGODB_DATABASE=database,
        ),
        ServiceProcess(
            "services.sink_hdfs",
            env,
            logs / "sink_hdfs.log",
            SINK_HDFS_GROUP_ID=groups["hdfs"],
            SINK_HDFS_ROOT=hdfs_root,
        ),
        ServiceProcess(
            "services.sink_gcs", env, logs / "sink_gcs.log", SINK_GCS_GROUP_ID=groups["gcs"], SINK_GCS_PREFIX=gcs_prefix
        ),
    ]
    mongo = mongo_client(MongoSettings.from_mapping(env))
    collection = mongo[database][mongo_sink.collection_for(mirrored)]
    hdfs_store = WebHdfsStore(env["HDFS_WEBHDFS_URL"], HdfsSettings().user)
    gcs = GcsSettings(endpoint=env["GCS_ENDPOINT"], bucket=env["GCS_BUCKET"])
    gcs_store = GcsStore(gcs_client(gcs), gcs.bucket)
    observer = Observer(local, [mirrored, enriched, *hdfs_topics, *gcs_topics, floor_topic])
    mongo_watch = MongoWatch(collection, observer.seen[mirrored])
    hdfs_watch, gcs_watch = FileWatch(hdfs_store, hdfs_root, hdfs_topics), FileWatch(gcs_store, gcs_prefix, gcs_topics)
    pollers = [Poller(mongo_watch.probe, 0.1), Poller(hdfs_watch.probe, 0.2), Poller(gcs_watch.probe, 0.2)]
    stop_floor = threading.Event()
    floor_config = producer_config(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), "bench-floor")
    floor_thread = threading.Thread(target=floor_producer, args=(floor_config, floor_topic, stop_floor), daemon=True)
    generator = ServiceProcess(
        "services.generator", env, logs / "generator.log", "--duration", str(DURATION_S), "--pace", **GENERATOR_RATES
    )
    try:
        for service in services:
            service.start()
        ready = wait_until(
            lambda: all(
                group_members(remote if name == "mirror" else local, group)[0] == "STABLE"
                for name, group in groups.items()
            ),
            180,
            0.5,
        )
        if not ready:
            raise RuntimeError(f"services did not join their groups; logs in {logs}")
        observer.start()
        for poller in pollers:
            poller.thread.start()
        floor_thread.start()
        generator.start()
        measured_from = (time.time() + WARMUP_S) * 1000
        code, _ = generator.wait(DURATION_S + 120)
        if code != 0:
            raise RuntimeError(f"generator exited {code}; see {logs / 'generator.log'}")
        stop_floor.set()
        floor_thread.join(30)

        def landed() -> bool:
            views = len(observer.seen[mirrored])
            files = sum(len(observer.seen[t]) for t in hdfs_topics) <= len(hdfs_watch.durable) and sum(
                len(observer.seen[t]) for t in gcs_topics
            ) <= len(gcs_watch.durable)
            return len(observer.seen[enriched]) >= views and mongo_watch.landed() and files

        deadline_s = FILE_ROTATION_INTERVAL_S + 30
        while not landed() and deadline_s > 0:
            time.sleep(0.5)
            deadline_s -= 0.5
    finally:
        stop_floor.set()
        try:
            generator.stop(10)
            for poller in pollers:
                if poller.thread.is_alive():
                    poller.close()
            observer.close()
        finally:  # whatever failed above, no service process is left behind
            for service in services:
                service.stop()
            mongo.drop_database(database)
            mongo.close()
    seen = observer.seen
    floor = [now - message.timestamp()[1] for now, message in seen[floor_topic] if now >= measured_from]
    mirrored_at: dict[str, float] = {}
    ingest: dict[str, int] = {}
    to_mirrored: list[float] = []
    for now, message in seen[mirrored]:
        event_id, _, ingest_ms = read_metadata_times(message.value())
        if event_id not in mirrored_at and ingest_ms >= measured_from:
            mirrored_at[event_id], ingest[event_id] = now, ingest_ms
            to_mirrored.append(now - ingest_ms)
    enriched_at: dict[str, float] = {}
    for now, message in seen[enriched]:
        enriched_at.setdefault(read_metadata_prefix(message.value())[0], now)
    to_enriched, end_to_end, to_mongo = [], [], []
    mongo_expected = 0
    timeline = []  # (ingest time, ingest -> enriched) of every view, for a look at how latency evolves
    for event_id, at in mirrored_at.items():
        done = enriched_at.get(join.enriched_event_id(join.PRODUCT_VIEWS, event_id))
        if done is not None:
            to_enriched.append(done - at)
            end_to_end.append(done - ingest[event_id])
            timeline.append((ingest[event_id], done - ingest[event_id]))
        if event_id in mongo_watch.sampled:
            mongo_expected += 1
            if event_id in mongo_watch.durable:
                to_mongo.append(mongo_watch.durable[event_id] - at)
    (logs / "timeline.json").write_text(json.dumps({"ingest_to_enriched": timeline, "floor": floor}))
    to_files = {
        "HDFS": _file_hops(seen, hdfs_topics, hdfs_watch, measured_from),
        "GCS": _file_hops(seen, gcs_topics, gcs_watch, measured_from),
    }
    rotation_ms = FILE_ROTATION_INTERVAL_S * 1000 + 1000
    rows = [
        *_rows("ingest -> enriched readable", end_to_end, floor, {"p50": (20, "<= 20 ms"), "p99": (100, "<= 100 ms")}),
        *_rows("remote produce -> mirrored readable", to_mirrored, floor, {}),
        *_rows("mirrored -> enriched readable", to_enriched, floor, {}),
        *_rows(
            f"raw -> MongoDB durable (reader, every {MONGO_SAMPLE}th view)",
            to_mongo,
            floor,
            {"p99": (1000, "<= 1000 ms")},
        ),
    ]
    for store, hops in to_files.items():
        goal = f"<= rotation interval {FILE_ROTATION_INTERVAL_S:.0f} s + 1 s"
        rows += _rows(f"raw -> {store} file durable (listed)", hops, floor, {"max": (rotation_ms, goal)})
    rows += _rows(FLOOR, floor, floor, {})
    expected = len(mirrored_at)
    missing = {
        "enriched": expected - len(to_enriched),
        "MongoDB (sampled)": mongo_expected - len(to_mongo),
        "HDFS": sum(now >= measured_from for t in hdfs_topics for now, _ in seen[t]) - len(to_files["HDFS"]),
        "GCS": sum(now >= measured_from for t in gcs_topics for now, _ in seen[t]) - len(to_files["GCS"]),
    }
    rows.append(
        {
            "name": "latency run: raw records not landed downstream ("
            + ", ".join(f"{k} {v}" for k, v in missing.items())
            + ")",
            "value": sum(missing.values()),
            "unit": "records",
            "baseline_name": f"views measured ({DURATION_S - WARMUP_S:.0f} s after a {WARMUP_S:.0f} s warm-up, "
            f"{RATE:.0f} events/s)",
            "baseline_value": expected,
            "ratio": 0.0 if not expected else round(sum(missing.values()) / expected, 4),
            "goal": "0",
            "met": sum(missing.values()) == 0,
        }
    )
    return rows


def _file_hops(
    seen: dict[str, list[tuple[float, Any]]], topics: list[str], watch: FileWatch, measured_from: float
) -> list[float]:
    hops = []
    for topic in topics:
        for now, message in seen[topic]:
            if now < measured_from:
                continue
            durable = watch.durable.get((topic, message.partition() or 0, message.offset() or 0))
            if durable is not None:
                hops.append(durable - now)
    return hops
