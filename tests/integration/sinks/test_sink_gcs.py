"""The GCS sink against the stack's GCS emulator (and a private one for the outage test)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.local.storage_components import GcsEmulator
from services.common.settings import GcsSettings
from services.common.sinks.files import TEMPORARY, committed_files, join
from services.sink_gcs.inspect import summary
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.store import GcsStore, gcs_client
from tests.integration.crash import tally
from tests.integration.processes import dead_letters, free_port, service_process, wait_for
from tests.integration.sinks.helpers import (
    SERVER_DOWN_S,
    PrivateTarget,
    avro_event_ids,
    kill_while_temporary,
    produce_events,
    wait_drained,
)

pytestmark = pytest.mark.integration


def _landed(store: GcsStore, prefix: str, topic: str) -> list[str]:
    ids: list[str] = []
    for item in committed_files(store, prefix, topic):
        ids.extend(avro_event_ids(store.read(item.path)))
    return ids


def _store(endpoint: str, bucket: str) -> GcsStore:
    store = GcsStore(gcs_client(GcsSettings(endpoint=endpoint)), bucket)
    store.ensure_bucket()
    return store


def _env(base: dict[str, str], topic: str, bucket: str, group: str) -> dict[str, str]:
    return {
        **base,
        "SINK_GCS_TOPICS": topic,
        "SINK_GCS_BUCKET": bucket,
        "SINK_GCS_PREFIX": "raw",
        "SINK_GCS_GROUP_ID": group,
        "SINK_GCS_BATCH_SIZE": "300",
        "SINK_GCS_BATCH_TIMEOUT_S": "0.5",
        "SINK_GCS_MAX_FILE_RECORDS": "120",
        "SINK_GCS_CREATE_BUCKET": "true",
    }


def test_sigkill_mid_stream_then_restart_lands_every_record_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("gcs-crash", 3)
    bucket = unique_name("bucket")
    store = _store(sink_env["GCS_ENDPOINT"], bucket)
    ids = produce_events(sink_env, topic, 12000)
    env = _env(sink_env, topic, bucket, unique_name("g"))
    log = tmp_path / "sink.log"
    temporary = join("raw", TEMPORARY, topic)
    kill_while_temporary("sink_gcs", env, log, store, "raw", topic)
    landed_at_kill = len(_landed(store, "raw", topic))
    more = produce_events(sink_env, topic, 1500)
    with service_process("sink_gcs", env, log) as sink:
        wait_drained(sink, env, env["SINK_GCS_GROUP_ID"], topic)
        assert sink.stop() == 0, sink.log()
    landed = tally(ids + more, _landed(store, "raw", topic))
    assert landed_at_kill < len(ids)
    assert (landed.outputs, landed.missing, landed.unexpected, landed.duplicates) == (len(ids) + len(more), 0, 0, 0)
    assert store.list_files(temporary) == []
    assert all("/dt=2026-11-02/hour=" in f.path for f in committed_files(store, "raw", topic))
    report = summary(GcsSinkSettings(topics=topic, bucket=bucket), GcsSettings.from_mapping(sink_env))
    assert report["topics"][topic]["records"] == len(ids) + len(more)


def test_poison_records_go_to_the_dead_letter_topic_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("gcs-poison", 1)
    bucket = unique_name("bucket")
    store = _store(sink_env["GCS_ENDPOINT"], bucket)
    ids = produce_events(sink_env, topic, 400, poison=3)
    with service_process("sink_gcs", _env(sink_env, topic, bucket, unique_name("g")), tmp_path / "sink.log") as sink:
        wait_for(lambda: len(_landed(store, "raw", topic)) >= len(ids), 120, what="good records")
        assert sink.stop() == 0
    assert sorted(_landed(store, "raw", topic)) == sorted(ids)
    assert len(dead_letters(sink_env, topic, 3)) == 3


def test_gcs_server_stopped_then_restarted_loses_nothing(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    target = PrivateTarget(GcsEmulator(), tmp_path / "home", gcs_port=free_port())
    target.start()
    try:
        endpoint = target.exports()["GCS_ENDPOINT"]
        bucket = target.exports()["GCS_BUCKET"]
        store = _store(endpoint, bucket)
        topic = new_topic("gcs-outage", 3)
        env = _env(
            {**sink_env, "GCS_ENDPOINT": endpoint, "STORAGE_EMULATOR_HOST": endpoint}, topic, bucket, unique_name("g")
        )
        first = produce_events(sink_env, topic, 900)
        with service_process("sink_gcs", env, tmp_path / "sink.log") as sink:
            wait_for(lambda: len(_landed(store, "raw", topic)) >= len(first), 120, what="first wave")
            target.stop()
            second = produce_events(sink_env, topic, 900)
            time.sleep(SERVER_DOWN_S)
            assert sink.alive(), sink.log()
            target.start()
            wait_for(lambda: len(_landed(store, "raw", topic)) >= len(first) + len(second), 180, what="second wave")
            assert sink.stop() == 0
        counts = collections.Counter(_landed(store, "raw", topic))
        assert set(counts) == set(first) | set(second)
        assert max(counts.values()) == 1
    finally:
        target.stop()
