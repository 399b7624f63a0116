"""The window jobs through chaos: the chaos harness (``deploy/chaos.py``) with its Flink stage, on a broker of the
run's own behind Toxiproxy, the mirror and the enricher feeding the jobs' sources; faults that reach the jobs:
connection resets and latency on the broker's link, the registry down, and the job cancelled and resubmitted from
its latest retained checkpoint. Every window the oracle computes from the run's events must be committed to Kafka once
and be in PostgreSQL, with the oracle's values."""

from __future__ import annotations

import pytest
from rich.console import Console

from deploy import flink_jobs
from deploy.chaos import ChaosOptions, run_chaos

pytestmark = pytest.mark.integration

# the broker's SIGKILL is left to `freightline chaos` with Flink (its restart alone takes half a minute here)
FAULTS = {("restart", "flink"), ("reset", "kafka"), ("latency", "kafka"), ("down", "registry")}


def test_window_jobs_exactly_once_through_broker_registry_and_job_faults(
    stack_env: dict[str, str], flink_rest_url: str
) -> None:
    options = ChaosOptions(
        events=1000,
        faults=len(FAULTS),
        seed=5,
        outage_s=3.0,
        gap_s=(0.5, 1.5),
        lag_wait_s=2.0,
        drain_timeout_s=240.0,
        private_kafka=True,
        flink=True,
        services=("mirror", "enricher"),  # the jobs' sources: mirrored views, enriched views (and the raw topics)
        fault_kinds=frozenset(kind for kind, _ in FAULTS),
    )
    result = run_chaos(stack_env, options)
    console = Console(width=160)
    for table in result.tables():
        console.print(table)
    console.print(f"phases: {', '.join(f'{name} {seconds:.0f}s' for name, seconds in result.phases.items())}")

    assert result.drained, f"the groups did not drain: {result.lag_left}"
    assert {(fault.kind, fault.target) for fault in result.faults} == FAULTS
    for count in result.counts:
        assert count.lost == 0 and count.unexpected == 0, count
    assert {count.job for count in result.windows} == set(flink_jobs.JOBS)
    for window in result.windows:
        assert (window.lost, window.duplicated, window.differing) == (0, 0, 0), window
        assert window.delivered == window.expected, window
    assert all(window.expected > 0 for window in result.windows if window.job == "product_views")
