"""The short chaos scenario: the pipeline (generator, mirror, enricher, detector, the three sinks) on a local and a
remote Kafka broker of the run's own, each behind Toxiproxy, through a SIGKILL of every service, an outage of the
registry and of each sink's target, the SIGKILL and restart of each broker, and latency, bandwidth and reset toxics on
the local broker's link; every event counted by id where it landed. The long scenario is ``freightline chaos
--minutes 30`` (README: "Chaos")."""

from __future__ import annotations

import pytest
from rich.console import Console

from deploy.chaos import SERVICES, TARGETS, ChaosOptions, run_chaos

pytestmark = pytest.mark.integration

SINKS = ("sink_mongodb", "sink_hdfs", "sink_gcs")
BROKER_KILLS = {("broker-kill", "kafka"), ("broker-kill", "remote-kafka")}
BROKER_FAULTS = BROKER_KILLS | {("latency", "kafka"), ("bandwidth", "kafka"), ("reset", "kafka")}


def test_nothing_lost_through_kills_outages_and_broker_faults(stack_env: dict[str, str]) -> None:
    options = ChaosOptions(
        events=1000,
        # every service killed, the registry and each target down, both brokers killed, each toxic on the local link
        faults=len(SERVICES) + 1 + len(TARGETS) + len(BROKER_FAULTS),
        seed=11,
        outage_s=2.0,
        gap_s=(0.2, 0.8),
        lag_wait_s=2.0,
        drain_timeout_s=240.0,
        private_kafka=True,
        flink=False,  # the window jobs' scenario runs in the engine lane (tests/integration/flink/test_chaos_flink.py)
    )
    result = run_chaos(stack_env, options)
    console = Console(width=160)
    for table in result.tables():
        console.print(table)
    console.print(f"phases: {', '.join(f'{name} {seconds:.0f}s' for name, seconds in result.phases.items())}")

    assert result.drained, f"the groups did not drain: {result.lag_left}"
    kinds = {(fault.kind, fault.target) for fault in result.faults}
    expected = {("kill", name) for name in SERVICES} | {("down", "registry")} | {("down", t) for t in TARGETS}
    assert kinds == expected | BROKER_FAULTS
    # each broker came back (its outage: from its SIGKILL until it answered again), the next fault only after it
    for kill in (fault for fault in result.faults if (fault.kind, fault.target) in BROKER_KILLS):
        assert kill.outage_s is not None, kill
        later = [fault.at_s for fault in result.faults if fault.at_s > kill.at_s]
        assert not later or min(later) >= kill.at_s + kill.outage_s, (kill, later)
    # the kills hit work in flight (the stream keeps every group busy): some group had uncommitted records
    assert sum(fault.lag or 0 for fault in result.faults if fault.kind == "kill") > 0
    stages = {count.stage for count in result.counts}
    assert {"mirror", "enricher", "anomaly detector (repartition)", *SINKS} <= stages
    for count in result.counts:
        assert count.lost == 0 and count.unexpected == 0, count
        if count.stage in (*SINKS, "mirror"):  # the mirror copies exactly once (transactions)
            assert count.duplicated == 0, count
    # product views on the run's remote broker (read back after its restart), every one mirrored (lost 0 above)
    assert sum(count.expected for count in result.counts if count.stage.startswith("generator -> remote")) > 0
    assert sum(count.expected for count in result.counts if count.stage == "mirror") > 0
    assert {row.service for row in result.memory} >= set(SERVICES)
