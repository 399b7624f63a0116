"""Helpers of the sink tests: events with unique ids over several hours, sink processes, private targets."""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastavro

from deploy.local.components import Component
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from services.common.kafka import Producer, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from services.common.sinks.files import TEMPORARY, FileStore, committed_files, join
from tests.integration.crash import group_lag
from tests.integration.crash import kill_in_flight as crash_kill
from tests.integration.processes import ServiceProcess, free_port, service_process, wait_for

PRODUCT_VIEW = "com.freightline.web.ProductView"
START = dt.datetime(2026, 11, 2, 7, 30, tzinfo=dt.UTC)
# How long a private target's server stays stopped in the tests of a stopped server: several of a sink's retries
# (the 30 s outage with paused consumption is the backpressure tests', over the shared servers behind a proxy).
SERVER_DOWN_S = 10.0


def produce_events(
    env: dict[str, str],
    topic: str,
    count: int,
    *,
    start: dt.datetime = START,
    spacing: dt.timedelta = dt.timedelta(seconds=2),
    poison: int = 0,
) -> list[str]:
    """Produce ``count`` ProductViews with fresh event ids (plus ``poison`` undecodable values)."""
    from schemas.catalogue import example, load_schema

    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), "sink-test"))
    template = example(PRODUCT_VIEW)
    ids = []
    for i in range(count):
        record = copy.deepcopy(template)
        event_id = str(uuid.uuid4())
        record["metadata"]["event_id"] = event_id
        record["metadata"]["event_time"] = start + spacing * i
        record["metadata"]["ingest_time"] = start + spacing * i
        record["product_id"] = f"P-{i % 97}"
        producer.produce(topic, encoder.encode(record), record["product_id"])
        ids.append(event_id)
        if poison and i % max(count // poison, 1) == 0 and i // max(count // poison, 1) < poison:
            producer.produce(topic, b"\x00\x00\x00\x00\x01not avro at all", f"poison-{i}")
    producer.flush(60)
    return ids


def consumer_lag(env: dict[str, str], group: str, topic: str) -> int:
    """Records of ``topic`` the consumer group has not committed yet, read without joining the group."""
    return group_lag({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}, group, [topic])


def wait_drained(sink: ServiceProcess, env: dict[str, str], group: str, topic: str, timeout: float = 400.0) -> None:
    """Wait until ``sink`` has committed every record of ``topic`` (it commits only what is durable: the group's lag
    is cheap to ask, where reading every file back on each poll is not); the sink's log tail when it never does."""
    try:
        wait_for(lambda: consumer_lag(env, group, topic) == 0 or not sink.alive(), timeout, what="every record")
    except AssertionError as error:
        raise AssertionError(f"{error}; lag {consumer_lag(env, group, topic)}; log:\n{sink.log()[-3000:]}") from None
    assert sink.alive(), sink.log()[-3000:]


def kill_in_flight(process: ServiceProcess, env: dict[str, str], group: str, topic: str) -> int:
    """SIGKILL ``process`` and return the group's lag at that moment (see ``tests.integration.crash``)."""
    return crash_kill(process.kill, {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}, group, [topic])


def kill_while_temporary(
    module: str,
    env: dict[str, str],
    log: Path,
    store: FileStore,
    root: str,
    topic: str,
    attempts: int = 8,
) -> int:
    """SIGKILL a file sink while a batch is being written (its files still temporary, not yet moved into place) and
    return the group's lag at the kill. The window is short, so a kill that missed it is followed by a restart and
    another try: each is a crash to recover from. Fails when the kill hits a drained consumer or never catches a
    batch in flight."""
    temporary = join(root.strip("/"), TEMPORARY, topic)
    group = env[f"{module.upper()}_GROUP_ID"]
    for _attempt in range(attempts):
        with service_process(module, env, log) as sink:
            wait_for(lambda: len(committed_files(store, root, topic)) >= 1, 120, what="files committed")
            wait_for(lambda: store.list_files(temporary) != [], 120, 0.005, what="a batch in flight")
            lag = kill_in_flight(sink, env, group, topic)
        assert lag > 0, "the kill hit a drained consumer"
        if store.list_files(temporary):
            return lag
    raise AssertionError(f"none of {attempts} kills left an unflushed batch (temporary file) behind")


def example_record(**changes: Any) -> dict[str, Any]:
    from schemas.catalogue import example

    record = example(PRODUCT_VIEW)
    record.update(changes)
    return record


def avro_event_ids(data: bytes) -> list[str]:
    return [str(r["metadata"]["event_id"]) for r in fastavro.reader(io.BytesIO(data))]  # type: ignore[call-overload,index]


class PrivateTarget:
    """One storage component of the stack run privately (own ports and data) from the stack's built runtimes."""

    def __init__(self, component: Component, home: Path, **settings: int | str) -> None:
        main = StackContext.create(StackSettings())
        home.mkdir(parents=True, exist_ok=True)
        for shared in ("jars", "launchers", "bin"):
            link = home / shared
            if not link.exists():
                link.symlink_to(main.paths.home / shared)
        self.ctx = StackContext.create(StackSettings.model_validate({"home": str(home), **settings}))
        self.ctx.paths.ensure()
        self.component = component
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.component.prepare(self.ctx)
        program = self.component.program(self.ctx)
        log = self.ctx.paths.log(self.component.name).open("ab")
        self.process = subprocess.Popen(
            program.command,
            env={**os.environ, **program.environment},
            cwd=program.directory,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for(lambda: self.component.ready(self.ctx), timeout, what=f"private {self.component.name}")
        self.component.after_ready(self.ctx)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def exports(self) -> dict[str, str]:
        return self.component.exports(self.ctx)


@contextmanager
def private_mongodb(env: dict[str, str], home: Path, **settings: int | str) -> Iterator[PrivateTarget]:
    """A MongoDB server of its own (FerretDB on its own port, over its own database on the stack's PostgreSQL, with
    any further stack ``settings``), not started; stopped and its database dropped afterwards."""
    import psycopg
    from psycopg import sql

    from deploy.local.storage_components import MongoServer

    dsn = urlsplit(env["POSTGRES_DSN"])
    database = f"ferretdb_test_{uuid.uuid4().hex[:10]}"
    target = PrivateTarget(
        MongoServer(),
        home,
        mongodb_port=free_port(),
        postgres_port=dsn.port or 0,
        mongodb_database=database,
        **settings,
    )
    try:
        yield target
    finally:
        target.stop()
        with psycopg.connect(dsn._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def produce_views(env: dict[str, str], topic: str, records: list[dict[str, Any]]) -> None:
    """Produce ProductViews as given, keyed by event id (deliveries of one event stay in order)."""
    from schemas.catalogue import load_schema

    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), "sink-test"))
    for record in records:
        producer.produce(topic, encoder.encode(record), str(record["metadata"]["event_id"]))
    producer.flush(60)


def produce_corrupt_tails(env: dict[str, str], topic: str) -> list[tuple[bytes, str]]:
    """ProductViews whose metadata reads fine but whose tail is corrupt, each with a fragment of the reason the
    sink must give: a truncated body, a bad union index, a varint running past the end, trailing garbage."""
    from schemas.catalogue import load_schema

    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
    record = example_record(remote_ip=None)
    record["metadata"]["event_id"] = str(uuid.uuid4())
    good = encoder.encode(record)
    assert good[-1] == 0  # the body ends with remote_ip's union index 0 (null)
    corrupt = [
        (good[:-3], "truncated"),
        (good[:-1] + b"\x08", "union index 4"),
        (good[:-1] + b"\x82", "truncated"),
        (good + b"\x00\x01garbage", "trailing bytes"),
    ]
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), "sink-test"))
    for payload, _reason in corrupt:
        producer.produce(topic, payload, "corrupt")
    producer.flush(60)
    return corrupt


def mongo_event_ids(uri: str, database: str, collection: str = "views") -> list[str]:
    """The event ids of the documents in ``database.collection``."""
    from services.common.settings import MongoSettings
    from services.sink_mongodb.target import mongo_client

    client = mongo_client(MongoSettings(uri=uri))
    try:
        return [doc["metadata"]["event_id"] for doc in client[database][collection].find({}, {"metadata.event_id": 1})]
    finally:
        client.close()


def mongo_document_count(uri: str, database: str, collection: str = "views") -> int:
    """The documents in ``database.collection`` (a count, not a read of every document: cheap to poll)."""
    from services.common.settings import MongoSettings
    from services.sink_mongodb.target import mongo_client

    client = mongo_client(MongoSettings(uri=uri))
    try:
        return int(client[database][collection].count_documents({}))
    finally:
        client.close()
