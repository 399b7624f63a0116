"""Every sink keeps its promises through a stop and a crash: SIGTERM mid-batch drains, writes, commits and exits 0
(the restart lands every record exactly once), and a poison record's dead letter survives a SIGKILL after it."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.settings import GcsSettings, HdfsSettings
from services.common.sinks.files import committed_files
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.store import WebHdfsStore
from tests.integration.lifecycle import (
    ServiceCase,
    check_dead_letters,
    crash_after_poison,
    interrupt_in_flight,
    produce_poison,
    run_to_end,
)
from tests.integration.sinks.helpers import avro_event_ids, mongo_event_ids, produce_events

pytestmark = pytest.mark.integration

SINKS = ["sink_mongodb", "sink_hdfs", "sink_gcs"]


def _file_ids(store: WebHdfsStore | GcsStore, root: str, topic: str) -> list[str]:
    return [i for item in committed_files(store, root, topic) for i in avro_event_ids(store.read(item.path))]


def _case(module: str, env: dict[str, str], topic: str, name: str, log: Path) -> ServiceCase:
    """``module`` reading ``topic`` in batches of 50 into a target of its own named after ``name``."""
    prefix = module.upper() + "_"
    settings = {"TOPICS": topic, "GROUP_ID": name, "BATCH_SIZE": "50", "BATCH_TIMEOUT_S": "0.5"}
    landed: Callable[[], list[str]]
    if module == "sink_mongodb":
        database = name.replace("-", "_")
        # bulk writes of 10 documents: the server takes a whole batch of 50 faster than a test can look
        settings |= {"DATABASE": database, "COLLECTIONS": f"{topic}=views", "BATCH_SIZE": "10"}
        uri = env["MONGODB_URI"]

        def landed() -> list[str]:
            return mongo_event_ids(uri, database)

    elif module == "sink_hdfs":
        root = f"/tests/{name}"
        hdfs = HdfsSettings(webhdfs_url=env["HDFS_WEBHDFS_URL"])
        hdfs_store = WebHdfsStore(hdfs.webhdfs_url, hdfs.user)
        settings |= {"ROOT": root, "MAX_FILE_RECORDS": "50"}

        def landed() -> list[str]:
            return _file_ids(hdfs_store, root, topic)

    else:
        gcs_store = GcsStore(gcs_client(GcsSettings.from_mapping(env)), name)
        gcs_store.ensure_bucket()
        settings |= {"BUCKET": name, "PREFIX": "raw", "MAX_FILE_RECORDS": "50"}

        def landed() -> list[str]:
            return _file_ids(gcs_store, "raw", topic)

    full = {**env, **{prefix + k: v for k, v in settings.items()}}
    return ServiceCase(module, full, name, [topic], landed, log)


@pytest.fixture
def make_case(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> Callable[[str, str, int], ServiceCase]:
    def make(module: str, prefix: str, partitions: int) -> ServiceCase:
        return _case(module, sink_env, new_topic(prefix, partitions), unique_name(prefix), tmp_path / "sink.log")

    return make


@pytest.mark.parametrize("module", SINKS)
def test_sigterm_mid_batch_drains_commits_exits_0_and_the_restart_lands_each_record_once(
    module: str, sink_env: dict[str, str], make_case: Callable[[str, str, int], ServiceCase]
) -> None:
    case = make_case(module, "term", 2)
    topic = case.topics[0]
    ids = produce_events(sink_env, topic, 3000)
    stopped = interrupt_in_flight(case, signal.SIGTERM)
    assert stopped.lag_at_signal > 0, "the SIGTERM hit a drained consumer"
    assert stopped.returncode == 0, case.log.read_text()[-3000:]
    # what was committed is exactly what is durable at the target: no record written beyond the commit
    assert len(stopped.landed) == len(set(stopped.landed)) == stopped.committed
    landed = run_to_end(case, len(ids)).landed
    assert sorted(landed) == sorted(ids)


@pytest.mark.parametrize("module", SINKS)
def test_poison_then_sigkill_leaves_one_dead_letter_with_the_original_record(
    module: str,
    sink_env: dict[str, str],
    make_case: Callable[[str, str, int], ServiceCase],
) -> None:
    case = make_case(module, "poison", 1)
    topic = case.topics[0]
    ids = produce_events(sink_env, topic, 200)
    poison = produce_poison({"bootstrap.servers": sink_env["KAFKA_BOOTSTRAP_SERVERS"]}, topic)
    ids += produce_events(sink_env, topic, 200)
    report = crash_after_poison(case, poison, len(ids))
    check_dead_letters(report, poison, module)
    assert sorted(report.landed) == sorted(ids)
