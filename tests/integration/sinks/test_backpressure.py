"""Every sink through an outage of its target: while the target is cut off the sink stops consuming (its consumed
count and its committed offsets stand still, its memory does not grow with the backlog), ``/readyz`` says not
ready, and after the target is back every record lands exactly once.

The target servers are the stack's, shared: the outage is made by a TCP proxy between the sink and the server
(``tests.integration.proxy``), which resets every connection while it is cut. For HDFS the proxy stands in front of
the NameNode's HTTP endpoint: WebHDFS sends every operation there first (data writes are then redirected to the
DataNode), so no write can succeed while it is cut.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.processes import local_client_config
from tests.integration.crash import tally
from tests.integration.lifecycle import group_progress
from tests.integration.proxy import TcpProxy
from tests.integration.sinks.helpers import example_record, produce_views, wait_for
from tests.integration.sinks.targets import SINKS, RunningSink, SinkUnderTest

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0  # how long the target stays cut off
HANG_GUARD_S = 120.0  # waits for a state are guards against a hang, never timed assertions
PADDING = 10_000  # bytes of each record's referrer, so that a backlog weighs enough to show in memory
FIRST = 600  # records written before the outage (they also warm the sink's buffers up)
BACKLOG = 4_000  # records produced once the target is cut: about 40 MB
BATCH = 200
# The sink's prefetch bound for these tests (librdkafka's queued.max.messages.kbytes) and per-partition fetch size:
# what the consumer may hold before it pauses. The memory check allows for them, a batch and its decoded copies.
QUEUED_MAX_KBYTES = 4096
MAX_PARTITION_FETCH_BYTES = 1024 * 1024
MEMORY_GROWTH_BOUND = 16 * 1024 * 1024  # well below the backlog's 38 MiB (measured: 2 to 4 MiB held)


def padded_views(count: int) -> list[dict[str, object]]:
    start = dt.datetime(2026, 11, 2, 7, 30, tzinfo=dt.UTC)
    records = []
    for i in range(count):
        record = example_record(product_id=f"P-{i % 97}", referrer_url="https://example.com/" + "r" * PADDING)
        metadata = dict(record["metadata"])
        metadata["event_id"] = str(uuid.uuid4())
        metadata["event_time"] = metadata["ingest_time"] = start + dt.timedelta(seconds=2 * i)
        record["metadata"] = metadata
        records.append(record)
    return records


def ids_of(records: list[dict[str, object]]) -> list[str]:
    return [str(record["metadata"]["event_id"]) for record in records]  # type: ignore[index]


def sink_env_via(sink: SinkUnderTest, proxy: TcpProxy) -> dict[str, str]:
    return sink.env(
        proxy.address,
        BATCH_SIZE=str(BATCH),
        BATCH_TIMEOUT_S="0.5",
        MAX_FILE_RECORDS=str(BATCH),
        HEALTH_INTERVAL_S="1",
        QUEUED_MAX_KBYTES=str(QUEUED_MAX_KBYTES),
        MAX_PARTITION_FETCH_BYTES=str(MAX_PARTITION_FETCH_BYTES),
    )


@dataclass
class OutageSample:
    readyz: int
    consumed: int
    rss: int


@pytest.mark.parametrize("module", SINKS)
def test_a_target_down_for_30_s_pauses_the_sink_which_then_lands_every_record_once(
    module: str, make_sink: Callable[[str, str, int], SinkUnderTest], tmp_path: Path
) -> None:
    sink = make_sink(module, "outage", 3)
    env = sink.env()
    first, backlog = padded_views(FIRST), padded_views(BACKLOG)
    with TcpProxy(*sink.upstream) as proxy, RunningSink(module, sink_env_via(sink, proxy), tmp_path / "s.log") as run:
        produce_views(env, sink.topic, first)

        def first_landed() -> bool:
            run.check_alive()
            return (
                group_progress(local_client_config(env), sink.group, [sink.topic])[0] == FIRST
                and len(sink.landed()) == FIRST
            )

        wait_for(first_landed, HANG_GUARD_S, what="the first records written and committed")
        assert run.readyz() == 200
        rss_before = run.rss()

        proxy.cut()
        cut_at = time.monotonic()
        produce_views(env, sink.topic, backlog)  # arrives while the sink still believes the target is up

        def write_failed() -> bool:  # a batch was written, failed and rewound (nothing probed the target before)
            return run.metric("freightline_records_consumed_total", topic=sink.topic, outcome="retried") > 0

        wait_for(write_failed, HANG_GUARD_S, interval=0.2, what="a failed write")
        wait_for(lambda: run.readyz() != 200, HANG_GUARD_S, interval=0.2, what="/readyz not ready")
        consumed_at_not_ready = run.consumed(sink.topic)
        committed_at_not_ready = group_progress(local_client_config(env), sink.group, [sink.topic])[0]
        samples = []
        while time.monotonic() < cut_at + OUTAGE_S:
            samples.append(OutageSample(run.readyz(), run.consumed(sink.topic), run.rss()))
            time.sleep(1)
        committed_at_end, total = group_progress(local_client_config(env), sink.group, [sink.topic])
        landed_at_end = sink.landed()
        consumed = max(sample.consumed for sample in samples) - consumed_at_not_ready
        peak, held = (value - rss_before for value in (max(sample.rss for sample in samples), samples[-1].rss))
        print(
            f"{module}: {len(samples)} samples over the outage, {proxy.refused} connections refused by the proxy, "
            f"{consumed} records consumed after /readyz said not ready; RSS {rss_before / 2**20:.1f} MiB before the "
            f"cut, {peak / 2**20:+.1f} MiB at the peak, {held / 2**20:+.1f} MiB held at the end of the outage "
            f"(backlog {BACKLOG * PADDING / 2**20:.0f} MiB)"
        )
        assert proxy.refused > 0, "the sink never reached the proxy during the outage: the outage did not touch it"
        # not ready for the whole outage
        assert [sample.readyz for sample in samples if sample.readyz == 200] == []
        # paused: at most the batch in hand when the target was found down is consumed (and rewound), no retries
        # of the backlog, and what the sink holds after the outage does not follow the backlog (the batch that
        # failed and the prefetch before the pause show as a passing peak)
        assert consumed <= BATCH, consumed
        assert held <= MEMORY_GROWTH_BOUND, held
        # nothing committed that had not landed: the offsets stood still at what the target holds
        assert len(landed_at_end) == len(set(landed_at_end)) == committed_at_end == committed_at_not_ready == FIRST
        proxy.restore()

        wait_for(lambda: run.readyz() == 200, HANG_GUARD_S, what="/readyz ready again")

        def all_landed() -> bool:
            run.check_alive()
            return (
                group_progress(local_client_config(env), sink.group, [sink.topic])[0] == total
                and len(sink.landed()) >= total
            )

        wait_for(all_landed, HANG_GUARD_S, what="every record written and committed")
        assert run.stop() == 0, run.process.log()

    # after the outage: every record exactly once
    landed = tally(ids_of(first) + ids_of(backlog), sink.landed())
    assert (landed.outputs, landed.missing, landed.unexpected, landed.duplicates) == (FIRST + BACKLOG, 0, 0, 0)


@pytest.mark.parametrize("module", SINKS)
def test_an_idle_sink_reports_not_ready_while_its_target_is_cut_off(
    module: str, make_sink: Callable[[str, str, int], SinkUnderTest], tmp_path: Path
) -> None:
    sink = make_sink(module, "outage", 3)
    with TcpProxy(*sink.upstream) as proxy, RunningSink(module, sink_env_via(sink, proxy), tmp_path / "s.log") as run:
        proxy.cut()
        wait_for(lambda: run.readyz() != 200, HANG_GUARD_S, interval=0.2, what="/readyz not ready without traffic")
        proxy.restore()
        wait_for(lambda: run.readyz() == 200, HANG_GUARD_S, what="/readyz ready again")
        assert proxy.refused > 0
        assert run.stop() == 0, run.process.log()
