"""Dead-letter replay end to end: records a sink dead-lettered because their schema id was missing from the registry
(a registry restored from a backup without one schema), the cause fixed (the schema imported under its id), then
``freightline dlq`` lists them, a dry run publishes nothing, a filtered replay and a full one re-publish each exactly
once (a repeated replay publishes nothing), and the sink ends with every record exactly once."""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest

from schemas.catalogue import example, load_schema
from services.common.dlq import REPLAY_OF_HEADER, dlq_topic_of, read_messages
from services.common.kafka import headers_of
from services.common.serde import subject_for
from services.common.settings import KafkaSettings
from tests.integration.processes import dead_letters, service_process, topic_size, wait_for
from tests.integration.sinks.helpers import PRODUCT_VIEW, consumer_lag, mongo_event_ids, produce_events

pytestmark = pytest.mark.integration

FREIGHTLINE = str(Path(sys.executable).parent / "freightline")
LOST_SCHEMA = 40
GARBAGE = 5


def _freightline(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([FREIGHTLINE, *args], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def _unused_schema_id(registry: str) -> int:
    """An id the registry will not hand out during the test: well above the next one it would assign."""
    probe = {"type": "record", "name": f"Probe{uuid.uuid4().hex}", "fields": []}
    answer = httpx.post(
        f"{registry}/subjects/probe-{uuid.uuid4().hex}/versions", json={"schema": json.dumps(probe)}, timeout=30
    )
    answer.raise_for_status()
    return int(answer.json()["id"]) + 500 + random.randrange(500)


def _records_of_a_lost_schema(count: int, schema_id: int, schema: dict[str, Any]) -> tuple[list[bytes], list[str]]:
    parsed = fastavro.parse_schema(schema)
    values, ids = [], []
    for i in range(count):
        record = example(PRODUCT_VIEW)
        record["metadata"]["event_id"] = event_id = str(uuid.uuid4())
        record["product_id"] = f"P-lost-{i}"
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, record)
        values.append(b"\x00" + struct.pack(">I", schema_id) + body.getvalue())
        ids.append(event_id)
    return values, ids


def test_replay_of_a_fixed_cause_lands_every_record_exactly_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    topic = new_topic("dlq-replay", 3)
    database = unique_name("db").replace("-", "_")
    group = unique_name("g")
    env = {
        **sink_env,
        "SINK_MONGODB_TOPICS": topic,
        "SINK_MONGODB_DATABASE": database,
        "SINK_MONGODB_COLLECTIONS": f"{topic}=views",
        "SINK_MONGODB_GROUP_ID": group,
    }
    registry = sink_env["SCHEMA_REGISTRY_URL"]
    good = produce_events(sink_env, topic, 300)
    lost_schema = {**load_schema(PRODUCT_VIEW), "doc": f"restored from a backup {uuid.uuid4().hex}"}
    lost_id = _unused_schema_id(registry)
    values, lost = _records_of_a_lost_schema(LOST_SCHEMA, lost_id, lost_schema)
    producer = Producer({"bootstrap.servers": sink_env["KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True})
    for i, value in enumerate(values):
        producer.produce(topic, value, f"lost-{i}".encode(), headers=[("traceparent", b"not a trace context")])
    for i in range(GARBAGE):
        producer.produce(topic, b"\x00\x00\x00\x00\x01not avro at all", f"garbage-{i}".encode())
    assert producer.flush(60) == 0
    uri = sink_env["MONGODB_URI"]

    with service_process("sink_mongodb", env, tmp_path / "sink.log") as sink:
        wait_for(lambda: len(mongo_event_ids(uri, database)) >= len(good), 180, what="the good records")
        assert len(dead_letters(sink_env, topic, LOST_SCHEMA + GARBAGE)) == LOST_SCHEMA + GARBAGE
        wait_for(lambda: consumer_lag(sink_env, group, topic) == 0, 120, what="input committed")

        listing = _freightline(sink_env, "dlq", "list", topic)
        assert f"by reason: undecodable {GARBAGE}, unknown_schema {LOST_SCHEMA}" in listing, listing
        assert f"{dlq_topic_of(topic)}: {LOST_SCHEMA + GARBAGE} of {LOST_SCHEMA + GARBAGE}" in listing, listing
        shown = _freightline(sink_env, "dlq", "show", dlq_topic_of(topic), "0")
        assert f"source          {topic}[" in shown and "replayed        no" in shown, shown

        # The cause: the registry lost one schema. The fix: import it again under its id, as a version of the
        # topic's subject, where it was registered (a schema of another subject is another contract's)
        subject = subject_for(topic)
        mode = f"{registry}/mode/{subject}"
        httpx.put(mode, params={"force": "true"}, json={"mode": "IMPORT"}, timeout=30).raise_for_status()
        body = {"schema": json.dumps(lost_schema), "id": lost_id}
        httpx.post(f"{registry}/subjects/{subject}/versions", json=body, timeout=30).raise_for_status()
        httpx.put(mode, json={"mode": "READWRITE"}, timeout=30).raise_for_status()

        size = topic_size({"bootstrap.servers": sink_env["KAFKA_BOOTSTRAP_SERVERS"]}, topic)
        dry = _freightline(sink_env, "dlq", "replay", topic, "--reason", "unknown_schema", "--dry-run")
        assert f"would replay {LOST_SCHEMA} ({LOST_SCHEMA} to {topic})" in dry, dry
        assert topic_size({"bootstrap.servers": sink_env["KAFKA_BOOTSTRAP_SERVERS"]}, topic) == size

        first = _freightline(sink_env, "dlq", "replay", topic, "--reason", "unknown_schema", "--source-partition", "0")
        replayed_first = int(first.split("replayed ")[-1].split()[0])
        assert 0 < replayed_first < LOST_SCHEMA, first
        rest = _freightline(sink_env, "dlq", "replay", topic, "--reason", "unknown_schema")
        assert f"{replayed_first} already replayed, replayed {LOST_SCHEMA - replayed_first} " in rest, rest
        again = _freightline(sink_env, "dlq", "replay", topic, "--reason", "unknown_schema")
        assert f"{LOST_SCHEMA} already replayed, replayed 0 (nothing)" in again, again

        wait_for(lambda: len(mongo_event_ids(uri, database)) >= len(good) + LOST_SCHEMA, 180, what="replayed records")
        assert sink.stop() == 0, sink.log()

    landed = Counter(mongo_event_ids(uri, database))
    assert set(landed) == set(good) | set(lost)
    assert max(landed.values()) == 1
    # On the topic: each dead letter replayed once, marked with its place in the dead-letter topic (read to the end
    # of each partition: the replays' transaction markers follow the last record).
    markers = [
        dict(headers_of(message)).get(REPLAY_OF_HEADER)
        for message in read_messages(KafkaSettings(bootstrap_servers=sink_env["KAFKA_BOOTSTRAP_SERVERS"]), topic)
    ]
    replayed = [marker for marker in markers if marker is not None]
    assert len(replayed) == len(set(replayed)) == LOST_SCHEMA
    # Nothing new was dead-lettered: the garbage stays where it was, the replayed records decoded.
    assert len(dead_letters(sink_env, topic, LOST_SCHEMA + GARBAGE)) == LOST_SCHEMA + GARBAGE
