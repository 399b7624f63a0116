"""A second instance of a sink joins its group while records flow: the partitions are shared out between the two
and nothing is lost, written twice or committed twice.

A producer keeps the stream flowing from before the first instance starts until the second one has written
records of its own. The checks: every input id landed exactly once (as multisets); the two instances together took
each record once (their ``ok`` consumed counts add up to the input: a record handled by both would show there even
where the target's idempotence hides it); and the group's commit log (``__consumer_offsets``, every commit in
order) goes strictly forward on each partition, so no range was committed twice and no commit went back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from types import TracebackType

import pytest

from services.common.kafka import end_positions
from tests.integration.commits import commit_log, group_assignments
from tests.integration.crash import tally
from tests.integration.lifecycle import group_progress
from tests.integration.sinks.helpers import PRODUCT_VIEW, example_record, wait_for
from tests.integration.sinks.targets import SINKS, RunningSink, SinkUnderTest

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0  # waits for a state are guards against a hang, never timed assertions
PARTITIONS = 4
BATCH = 1000
GATHER_S = "1.0"
TICK_S = 0.1  # the stream's pace: RECORDS_PER_TICK records every tick
RECORDS_PER_TICK = 30


class Stream:
    """ProductViews with fresh ids produced at a steady pace from a thread, until ``stop()``."""

    def __init__(self, env: dict[str, str], topic: str) -> None:
        from schemas.catalogue import load_schema
        from services.common.kafka import Producer, producer_config
        from services.common.serde import AvroSerde, registry_client, subject_for
        from services.common.settings import KafkaSettings, SchemaRegistrySettings

        serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
        self.encoder = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
        kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
        self.producer = Producer(producer_config(kafka, "rebalance-test"))
        self.topic = topic
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(TICK_S):
                for _ in range(RECORDS_PER_TICK):
                    record = example_record(product_id=f"P-{len(self.ids) % 97}")
                    record["metadata"] = {**record["metadata"], "event_id": str(uuid.uuid4())}
                    self.producer.produce(self.topic, self.encoder.encode(record), record["product_id"])
                    self.ids.append(record["metadata"]["event_id"])
                self.producer.poll(0)
        except BaseException as error:  # reported by ``stop``
            self._error = error

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> list[str]:
        """Stop producing, wait until every record is acknowledged and return their ids."""
        self._stop.set()
        self._thread.join(60)
        if self._error is not None:
            raise AssertionError(f"the stream failed: {self._error!r}")
        self.producer.flush(60)
        return list(self.ids)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(60)


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

    with Stream(sink_env, topic) as stream, instance("a") as first:
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
                return group_progress(sink_env, group, topic)[0] == len(ids) and len(sink.landed()) >= len(ids)

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
    for partition, offsets in commits.items():
        backwards_or_repeated = [(a, b) for a, b in pairwise(offsets) if b <= a]
        assert backwards_or_repeated == [], (partition, backwards_or_repeated)
    # and the last commits are the ends of the partitions
    assert {p: offsets[-1] for p, offsets in commits.items()} == end_positions(sink_env, [topic])[topic]
