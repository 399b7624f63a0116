"""The HDFS sink against the stack's HDFS (and a private one for the outage test)."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.local.storage_components import Hdfs
from services.common.settings import HdfsSettings
from services.common.sinks.files import TEMPORARY, committed_files, join
from services.sink_hdfs.inspect import summary
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.store import WebHdfsStore
from tests.integration.processes import dead_letters, decode_dead_letter, free_port, service_process, wait_for
from tests.integration.sinks.helpers import (
    SERVER_DOWN_S,
    PrivateTarget,
    avro_event_ids,
    kill_while_temporary,
    produce_corrupt_tails,
    produce_events,
)

pytestmark = pytest.mark.integration


def _landed(store: WebHdfsStore, root: str, topic: str) -> list[str]:
    ids: list[str] = []
    for item in committed_files(store, root, topic):
        ids.extend(avro_event_ids(store.read(item.path)))
    return ids


def _env(base: dict[str, str], topic: str, root: str, group: str, **extra: str) -> dict[str, str]:
    return {
        **base,
        "SINK_HDFS_TOPICS": topic,
        "SINK_HDFS_ROOT": root,
        "SINK_HDFS_GROUP_ID": group,
        "SINK_HDFS_BATCH_SIZE": "300",
        "SINK_HDFS_BATCH_TIMEOUT_S": "0.5",
        "SINK_HDFS_MAX_FILE_RECORDS": "120",
        **extra,
    }


def test_sigkill_mid_stream_then_restart_lands_every_record_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("hdfs-crash", 3)
    root = f"/tests/{unique_name('hdfs')}"
    hdfs = HdfsSettings(webhdfs_url=sink_env["HDFS_WEBHDFS_URL"])
    store = WebHdfsStore(hdfs.webhdfs_url, hdfs.user)
    ids = produce_events(sink_env, topic, 8000)
    # files of 40 records: a batch of 300 writes several temporaries before it moves them into place
    env = _env(sink_env, topic, root, unique_name("g"), SINK_HDFS_MAX_FILE_RECORDS="40")
    log = tmp_path / "sink.log"
    # the kill leaves a file being written: the restart must finish or discard it without losing or doubling
    kill_while_temporary("sink_hdfs", env, log, store, root, topic)
    landed_at_kill = len(_landed(store, root, topic))
    more = produce_events(sink_env, topic, 1500)
    with service_process("sink_hdfs", env, log) as sink:
        wait_for(lambda: len(_landed(store, root, topic)) >= len(ids) + len(more), 600, what="all records")
        assert sink.stop() == 0, sink.log()
    landed = _landed(store, root, topic)
    counts = collections.Counter(landed)
    assert landed_at_kill < len(ids) + len(more)
    assert set(counts) == set(ids) | set(more)
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]
    assert store.list_files(join(root.strip("/"), TEMPORARY, topic)) == []
    files = committed_files(store, root, topic)
    assert all("/dt=2026-11-02/hour=" in f.path for f in files)
    report = summary(HdfsSinkSettings(topics=topic, root=root), hdfs)
    assert report["topics"][topic]["records"] == len(ids) + len(more)


def test_poison_records_go_to_the_dead_letter_topic_once(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("hdfs-poison", 1)
    root = f"/tests/{unique_name('hdfs')}"
    store = WebHdfsStore(sink_env["HDFS_WEBHDFS_URL"], "freightline")
    ids = produce_events(sink_env, topic, 400, poison=3)
    with service_process("sink_hdfs", _env(sink_env, topic, root, unique_name("g")), tmp_path / "sink.log") as sink:
        wait_for(lambda: len(_landed(store, root, topic)) >= len(ids), 120, what="good records")
        assert sink.stop() == 0
    assert sorted(_landed(store, root, topic)) == sorted(ids)
    letters = dead_letters(sink_env, topic, 3)
    assert len(letters) == 3


def test_hdfs_server_stopped_then_restarted_loses_nothing(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    target = PrivateTarget(Hdfs(), tmp_path / "home", hdfs_namenode_port=free_port(), hdfs_webhdfs_port=free_port())
    target.start()
    try:
        url = target.exports()["HDFS_WEBHDFS_URL"]
        store = WebHdfsStore(url, "freightline")
        topic = new_topic("hdfs-outage", 3)
        root = "/raw"
        env = _env({**sink_env, "HDFS_WEBHDFS_URL": url}, topic, root, unique_name("g"))
        first = produce_events(sink_env, topic, 900)
        with service_process("sink_hdfs", env, tmp_path / "sink.log") as sink:
            wait_for(lambda: len(_landed(store, root, topic)) >= len(first), 120, what="first wave")
            target.stop()
            second = produce_events(sink_env, topic, 900)
            import time

            time.sleep(SERVER_DOWN_S)
            assert sink.alive(), sink.log()
            target.start()
            wait_for(lambda: len(_landed(store, root, topic)) >= len(first) + len(second), 180, what="second wave")
            assert sink.stop() == 0
        counts = collections.Counter(_landed(store, root, topic))
        assert set(counts) == set(first) | set(second)
        assert max(counts.values()) == 1
    finally:
        target.stop()


def test_records_with_a_corrupt_tail_are_dead_lettered_once_and_files_stay_readable(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("hdfs-corrupt", 1)
    root = f"/tests/{unique_name('hdfs')}"
    store = WebHdfsStore(sink_env["HDFS_WEBHDFS_URL"], "freightline")
    ids = produce_events(sink_env, topic, 150)
    corrupt = produce_corrupt_tails(sink_env, topic)
    ids += produce_events(sink_env, topic, 150)
    with service_process("sink_hdfs", _env(sink_env, topic, root, unique_name("g")), tmp_path / "sink.log") as sink:
        wait_for(lambda: len(_landed(store, root, topic)) >= len(ids), 120, what="good records")
        assert sink.stop() == 0, sink.log()
    # every file reads end to end with fastavro (``_landed`` decodes every record), each good record once
    assert sorted(_landed(store, root, topic)) == sorted(ids)
    letters = [decode_dead_letter(sink_env, m.value()) for m in dead_letters(sink_env, topic, len(corrupt))]
    assert sorted(letter["original_value"] for letter in letters) == sorted(payload for payload, _ in corrupt)
    for letter in letters:
        reason = dict((payload, reason) for payload, reason in corrupt)[letter["original_value"]]
        assert letter["error_type"] == "undecodable"
        assert reason in letter["error_message"], letter["error_message"]
