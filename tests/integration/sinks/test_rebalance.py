"""A second instance of a sink joins its group while records flow: the partitions are shared out between the two
and nothing is lost, written twice or committed twice.

A producer keeps the stream flowing from before the first instance starts until the second one has written
records of its own. The checks: every input id landed exactly once (as multisets); the two instances together took
each record once (their ``ok`` consumed counts add up to the input: a record handled by both would show there even
where the target's idempotence hides it); and the group's commit log (``__consumer_offsets``, every commit in
order) goes strictly forward on each partition, so no range was committed twice and no commit went back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.processes import local_client_config
from services.common.kafka import end_positions
from tests.integration.commits import commit_log, group_assignments, not_forward
from tests.integration.crash import tally
from tests.integration.lifecycle import group_progress
from tests.integration.sinks.helpers import PRODUCT_VIEW, example_record, wait_for
from tests.integration.sinks.targets import SINKS, RunningSink, SinkUnderTest
from tests.integration.stream import PacedStream, Record

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0  # waits for a state are guards against a hang, never timed assertions
PARTITIONS = 4
BATCH = 1000
GATHER_S = "1.0"
TICK_S = 0.1  # the stream's pace: RECORDS_PER_TICK records every tick
RECORDS_PER_TICK = 30


def product_views(env: dict[str, str], topic: str) -> Callable[[int], Record]:
    """The n-th record of a stream of ProductViews with fresh ids, keyed by product."""
    from schemas.catalogue import load_schema
    from services.common.serde import AvroSerde, registry_client, subject_for
    from services.common.settings import SchemaRegistrySettings

    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))

    def make(n: int) -> Record:
        record = example_record(product_id=f"P-{n % 97}")
        event_id = str(uuid.uuid4())
        record["metadata"] = {**record["metadata"], "event_id": event_id}
        return record["product_id"], encoder.encode(record), None, event_id

    return make


@pytest.mark.parametrize("module", SINKS)
def test_a_second_instance_joining_mid_stream_loses_nothing_and_commits_nothing_twice(
    module: str,
    sink_env: dict[str, str],
    make_sink: Callable[[str, str, int], SinkUnderTest],
    tmp_path: Path,
) -> None:
    sink = make_sink(module, "rebalance", PARTITIONS)
    client = {"bootstrap.servers": sink_env["KAFKA_BOOTSTRAP_SERVERS"]}
    # batches that gather for a second (the stream brings fewer records): a rebalance finds one being gathered
    settings = {"BATCH_SIZE": str(BATCH), "BATCH_TIMEOUT_S": GATHER_S, "BATCH_IDLE_S": GATHER_S}
    topic, group = sink.topic, sink.group

    def instance(name: str) -> RunningSink:
        # each instance its own static member id (on one host the default would be the same for both)
        return RunningSink(module, sink.env(INSTANCE_ID=f"{group}-{name}", **settings), tmp_path / f"{name}.log")

    def handled(run: RunningSink) -> int:
        return int(run.metric("freightline_records_consumed_total", topic=topic, outcome="ok"))

    stream = PacedStream(client, topic, product_views(sink_env, topic), per_tick=RECORDS_PER_TICK, tick_s=TICK_S)
    with stream, instance("a") as first:
        wait_for(lambda: handled(first) > 0, HANG_GUARD_S, what="the first instance's first records written")
        with instance("b") as second:

            def shared_out() -> bool:
                first.check_alive()
                second.check_alive()
                members = group_assignments(client, group)
                return len(members) == 2 and all(members.values())

            wait_for(shared_out, HANG_GUARD_S, what="the partitions shared out between the two instances")
            wait_for(lambda: handled(second) > 0, HANG_GUARD_S, what="the second instance's first records written")
            ids = stream.stop()

            def all_landed() -> bool:
                first.check_alive()
                second.check_alive()
                return group_progress(local_client_config(sink_env), group, [topic])[0] == len(ids) and len(
                    sink.landed()
                ) >= len(ids)

            wait_for(all_landed, HANG_GUARD_S, what="every record written and committed")
            by_instance = (handled(first), handled(second))
            replays = f"freightline_{module}_records_skipped_total"  # replays the target already held
            skipped = [int(run.metric(replays, topic=topic)) for run in (first, second)]
            assert second.stop() == 0, second.process.log()
        assert first.stop() == 0, first.process.log()

    commits = commit_log(client, group, topic)
    print(
        f"{module}: {len(ids)} records, handled {by_instance[0]} by the first instance and {by_instance[1]} by the "
        f"second, {sum(len(offsets) for offsets in commits.values())} commits on {len(commits)} partitions, "
        f"replays skipped {skipped}"
    )
    landed = tally(ids, sink.landed())
    assert (landed.outputs, landed.missing, landed.unexpected, landed.duplicates) == (len(ids), 0, 0, 0)
    assert sum(by_instance) == len(ids), (by_instance, commits)  # no record taken by both instances
    assert sorted(commits) == list(range(PARTITIONS))
    assert not_forward(commits) == {}
    # and the last commits are the ends of the partitions
    assert {p: offsets[-1] for p, offsets in commits.items()} == end_positions(sink_env, [topic])[topic]
