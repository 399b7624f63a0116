"""Exactly once across the two clusters: the mirror SIGKILLed again and again while it copies leaves every remote
record exactly once in the local topic, as a ``read_committed`` consumer reads it (the consumers' default), in
order per partition; what the killed transactions had copied is in the log but aborted, so no consumer sees it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.integration.crash import group_lag, tally
from tests.integration.mirror.conftest import MirrorProcess, MirrorTopics, compare, produce_sequence, sequence_id
from tests.integration.processes import read_topic, wait_for

pytestmark = pytest.mark.integration

RECORDS = 100_000
KILLS = 2
BATCH = 25_000  # long transactions: a kill once the log grows lands inside one


def test_sigkill_mid_copy_leaves_every_record_once_in_the_local_topic(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
    mirror_topics: MirrorTopics,
) -> None:
    source, destination, group, remote = (
        mirror_topics.source,
        mirror_topics.destination,
        mirror_topics.group,
        mirror_topics.remote,
    )
    local = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    produce_sequence(remote, mirror_registry_url, source, partitions=3, count=RECORDS)
    settings = {
        "SCHEMA_REGISTRY_URL": mirror_registry_url,
        "MIRROR_TOPICS": source,
        "MIRROR_RENAME": json.dumps({source: destination}),
        "MIRROR_GROUP_ID": group,
        "MIRROR_INSTANCE_ID": f"{group}-instance",  # one instance, restarted: the same transactional id
        "MIRROR_OFFSETS_TOPIC": unique_name("offsets"),
        "MIRROR_BATCH_SIZE": str(BATCH),
        "MIRROR_BATCH_TIMEOUT_S": "5",
        "MIRROR_BATCH_IDLE_S": "5",  # batches fill up to BATCH
    }

    # read_uncommitted: its high watermark (a read_committed client is told the last stable offset instead)
    probe = Consumer({**local, "group.id": unique_name("probe"), "isolation.level": "read_uncommitted"})

    def log_end() -> int:
        """The destination's log end (records, aborted ones and transaction markers): one request per partition."""
        try:
            return sum(probe.get_watermark_offsets(TopicPartition(destination, p), timeout=5)[1] for p in range(3))
        except KafkaException:  # not created yet
            return 0

    lag_at_kills: list[int] = []
    try:
        for _ in range(KILLS):
            mirror = mirror_process(stack_env, **settings).start()
            size = log_end()
            # the log grew: a batch is being copied, its transaction open (it commits once all BATCH records are in)
            while mirror.alive() and log_end() <= size:
                time.sleep(0.005)
            assert mirror.alive(), mirror.log.read_text()[-3000:]
            mirror.kill()
            lag_at_kills.append(group_lag(remote, group, [source]))
    finally:
        probe.close()
    mirror = mirror_process(stack_env, **settings).start()
    wait_for(lambda: not mirror.alive() or group_lag(remote, group, [source]) == 0, 240, 0.5, "copied")
    assert mirror.stop() == 0, mirror.log.read_text()[-3000:]

    committed = read_topic(local, destination)
    everything = read_topic({**local, "isolation.level": "read_uncommitted"}, destination)
    aborted = len(everything) - len(committed)
    print(f"\nmirror exactly once: {KILLS} SIGKILLs, lag at the kills {lag_at_kills}, {aborted} aborted copies")
    assert min(lag_at_kills) > 0, "a kill hit a drained mirror: give it more records"
    ids = tally((str(n) for n in range(RECORDS)), (sequence_id(m) for m in committed))
    assert (ids.missing, ids.unexpected, ids.duplicates) == (0, 0, 0), ids
    report = compare(read_topic(remote, source), committed, body_only=True)
    assert (report.lost, report.duplicates, report.in_order) == (0, 0, True), report
    assert aborted > 0, "no kill hit an open transaction"
