"""The MongoDB sink against the stack's server (and a private one for the outage test)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.settings import MongoSettings
from services.sink_mongodb.inspect import summary
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client
from tests.integration.crash import tally
from tests.integration.processes import dead_letters, free_port, service_process, wait_for
from tests.integration.sinks.helpers import (
    SERVER_DOWN_S,
    consumer_lag,
    example_record,
    kill_in_flight,
    mongo_document_count,
    mongo_event_ids,
    private_mongodb,
    produce_events,
    produce_views,
)

pytestmark = pytest.mark.integration


def _env(base: dict[str, str], topic: str, database: str, group: str) -> dict[str, str]:
    return {
        **base,
        "SINK_MONGODB_TOPICS": topic,
        "SINK_MONGODB_DATABASE": database,
        "SINK_MONGODB_COLLECTIONS": f"{topic}=views",
        "SINK_MONGODB_GROUP_ID": group,
        "SINK_MONGODB_BATCH_SIZE": "300",
    }


_ids = mongo_event_ids


def _written(port: int, topic: str) -> int:
    """The running sink's ``records_written_total`` for ``topic``, from its metrics endpoint."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    name = "freightline_sink_mongodb_records_written_total"
    return int(sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name) and topic in line))


def group_caught_up(env: dict[str, str], group: str, topic: str) -> bool:
    return consumer_lag(env, group, topic) == 0


def test_sigkill_mid_stream_then_restart_lands_every_record_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("mongo-crash", 3)
    database = unique_name("db").replace("-", "_")
    uri = sink_env["MONGODB_URI"]
    # a backlog the sink needs several seconds for, polled by count, so the kill comes while records are in flight
    ids = produce_events(sink_env, topic, 30000)
    group = unique_name("g")
    env = _env(sink_env, topic, database, group)
    log = tmp_path / "sink.log"
    with service_process("sink_mongodb", env, log) as sink:
        wait_for(lambda: mongo_document_count(uri, database) >= 300, 120, what="first documents")
        lag_at_kill = kill_in_flight(sink, sink_env, group, topic)
        assert lag_at_kill > 0, "the kill hit a drained consumer"
    landed_at_kill = set(_ids(uri, database))
    more = produce_events(sink_env, topic, 600)
    port = free_port()
    with service_process("sink_mongodb", {**env, "METRICS_PORT": str(port)}, log) as sink:
        wait_for(lambda: len(_ids(uri, database)) >= len(ids) + len(more), 240, what="all documents")
        wait_for(lambda: group_caught_up(sink_env, group, topic), 60, what="offsets committed")
        written = _written(port, topic)
        assert sink.stop() == 0, sink.log()
    # Every document's event id against the produced ids as multisets: none missing, none foreign, none twice.
    landed = tally(ids + more, _ids(uri, database))
    assert (landed.outputs, landed.missing, landed.unexpected, landed.duplicates) == (len(ids) + len(more), 0, 0, 0)
    # The sink's own count, independent of the ``_id`` index: the restart wrote every id missing at the kill, and
    # rewrote (upserted again) only records that were in flight at the kill.
    rewritten = written - (len(ids) + len(more) - len(landed_at_kill))
    print(f"mongodb crash test: {lag_at_kill} in flight at the kill, {rewritten} rewritten after the restart")
    assert 0 <= rewritten <= lag_at_kill, (written, len(landed_at_kill), lag_at_kill)
    report = summary(
        MongoSinkSettings(topics=topic, database=database, collections=f"{topic}=views"), MongoSettings(uri=uri)
    )
    assert report["collections"]["views"]["documents"] == len(ids) + len(more)


def test_poison_records_go_to_the_dead_letter_topic_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("mongo-poison", 1)
    database = unique_name("db").replace("-", "_")
    ids = produce_events(sink_env, topic, 300, poison=3)
    with service_process("sink_mongodb", _env(sink_env, topic, database, unique_name("g")), tmp_path / "s.log") as sink:
        wait_for(lambda: len(_ids(sink_env["MONGODB_URI"], database)) >= len(ids), 120, what="good records")
        assert sink.stop() == 0
    assert sorted(_ids(sink_env["MONGODB_URI"], database)) == sorted(ids)
    assert len(dead_letters(sink_env, topic, 3)) == 3


def test_mongodb_server_stopped_then_restarted_loses_nothing(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    with private_mongodb(sink_env, tmp_path / "home") as target:
        target.start()
        uri = target.exports()["MONGODB_URI"]
        topic = new_topic("mongo-outage", 3)
        env = _env({**sink_env, "MONGODB_URI": uri}, topic, "freightline", unique_name("g"))
        first = produce_events(sink_env, topic, 600)
        with service_process("sink_mongodb", env, tmp_path / "sink.log") as sink:
            wait_for(lambda: len(_ids(uri, "freightline")) >= len(first), 120, what="first wave")
            target.stop()
            second = produce_events(sink_env, topic, 600)
            time.sleep(SERVER_DOWN_S)
            assert sink.alive(), sink.log()
            target.start()
            wait_for(lambda: len(_ids(uri, "freightline")) >= len(first) + len(second), 180, what="second wave")
            assert sink.stop() == 0
        landed = _ids(uri, "freightline")
        assert len(landed) == len(set(landed)) == len(first) + len(second)


def test_redelivered_events_leave_one_document_with_the_latest_content(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("mongo-upsert", 3)
    database = unique_name("db").replace("-", "_")
    uri = sink_env["MONGODB_URI"]
    ids = [str(uuid.uuid4()) for _ in range(50)]

    def deliveries(version: str) -> list[dict[str, Any]]:
        records = []
        for event_id in ids:
            record = example_record(product_id=f"{version}-{event_id[:8]}")
            record["metadata"]["event_id"] = event_id
            records.append(record)
        return records

    produce_views(sink_env, topic, deliveries("first") + deliveries("second"))  # replays within one batch
    env = _env(sink_env, topic, database, unique_name("g"))
    client = mongo_client(MongoSettings(uri=uri))
    try:
        views = client[database]["views"]
        with service_process("sink_mongodb", env, tmp_path / "sink.log") as sink:
            wait_for(lambda: views.count_documents({"product_id": {"$regex": "^second"}}) == len(ids), 120)
            produce_views(sink_env, topic, deliveries("third"))  # replays in a later batch
            wait_for(lambda: views.count_documents({"product_id": {"$regex": "^third"}}) == len(ids), 120)
            assert sink.stop() == 0, sink.log()
        landed = list(views.find({}))
        assert sorted(doc["_id"] for doc in landed) == sorted(ids)
        assert all(doc["product_id"] == f"third-{doc['_id'][:8]}" for doc in landed)
        assert all(doc["metadata"]["event_id"] == doc["_id"] for doc in landed)
        client.drop_database(database)
    finally:
        client.close()
