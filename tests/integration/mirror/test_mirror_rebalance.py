"""A second mirror joins the group while records flow on the remote cluster: the source partitions are shared
out between the two, nothing is lost, nothing copied twice, and the group's commit log goes strictly forward on
each partition (as for the sinks: ``tests/integration/sinks/test_rebalance.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.kafka import ensure_topics
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.commits import commit_log, group_assignments, not_forward
from tests.integration.crash import group_lag, tally
from tests.integration.generator.support import wait_for
from tests.integration.mirror.conftest import (
    SEQUENCE_SCHEMA,
    MirrorProcess,
    compare,
    mirror_settings,
    remote_config,
    sequence_id,
)
from tests.integration.processes import read_topic
from tests.integration.service_metrics import metric_of
from tests.integration.stream import PacedStream, Record

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0  # waits for a state are guards against a hang, never timed assertions
PARTITIONS = 4
GATHER_S = "1.0"  # batches gather for a second (the stream brings fewer records than a batch holds)


def sequence(registry_url: str, topic: str) -> Callable[[int], Record]:
    encoder = AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url))).encoder(
        subject_for(topic), SEQUENCE_SCHEMA
    )

    def make(n: int) -> Record:
        value = encoder.encode({"partition": n % PARTITIONS, "n": n, "pad": "x" * 40})
        return f"k{n}", value, [("seq", str(n).encode())], str(n)

    return make


def test_a_second_mirror_joining_mid_stream_loses_nothing_and_copies_nothing_twice(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    source, destination, group = unique_name("src"), unique_name("dst"), unique_name("grp")
    remote = remote_config(stack_env)
    local = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    ensure_topics(KafkaSettings.from_client_config(remote), [(source, PARTITIONS, {})])
    env = {**stack_env, "SCHEMA_REGISTRY_URL": mirror_registry_url}
    # batches that gather for a second: the rebalance finds one being gathered
    settings = mirror_settings(
        source,
        destination,
        group,
        MIRROR_BATCH_SIZE="1000",
        MIRROR_BATCH_TIMEOUT_S=GATHER_S,
        MIRROR_BATCH_IDLE_S=GATHER_S,
    )

    def started(name: str) -> MirrorProcess:
        # each instance its own static member id (on one host the default would be the same for both)
        mirror = mirror_process(env, **settings, MIRROR_INSTANCE_ID=f"{group}-{name}").start()
        wait_for(lambda: handled(mirror) >= 0, HANG_GUARD_S, f"mirror {name} serving metrics")
        return mirror

    def handled(mirror: MirrorProcess) -> int:
        if not mirror.alive():
            raise AssertionError(f"the mirror exited:\n{mirror.log.read_text()[-3000:]}")
        return int(
            metric_of(mirror.url("/metrics"), "freightline_records_consumed_total", {"outcome": "ok"}, default=-1)
        )

    with PacedStream(remote, source, sequence(mirror_registry_url, source)) as stream:
        first = started("a")
        wait_for(lambda: handled(first) > 0, HANG_GUARD_S, "the first mirror's first records copied")
        second = started("b")

        def shared_out() -> bool:
            members = group_assignments(remote, group)
            return handled(first) >= 0 and handled(second) >= 0 and len(members) == 2 and all(members.values())

        wait_for(shared_out, HANG_GUARD_S, "the partitions shared out between the two mirrors")
        wait_for(lambda: handled(second) > 0, HANG_GUARD_S, "the second mirror's first records copied")
        ids = stream.stop()
        wait_for(lambda: group_lag(remote, group, [source]) == 0, HANG_GUARD_S, "every record copied and committed")
        by_instance = (handled(first), handled(second))
        assert second.stop() == 0
        assert first.stop() == 0

    commits = commit_log(remote, group, source)
    inputs, outputs = read_topic(remote, source), read_topic(local, destination)
    report = compare(inputs, outputs)
    copied = tally(ids, [sequence_id(m) for m in outputs])
    print(
        f"mirror: {len(ids)} records, copied {by_instance[0]} by the first mirror and {by_instance[1]} by the "
        f"second, {sum(len(offsets) for offsets in commits.values())} commits on {len(commits)} partitions"
    )
    assert (copied.outputs, copied.missing, copied.unexpected, copied.duplicates) == (len(ids), 0, 0, 0), copied
    assert (report.lost, report.duplicates, report.in_order) == (0, 0, True), report
    assert sum(by_instance) == len(ids), (by_instance, commits)  # no record taken by both mirrors
    assert sorted(commits) == list(range(PARTITIONS))
    assert not_forward(commits) == {}
