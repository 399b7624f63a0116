"""The chaos harness's fault timeline: every kind once in a seeded order, then cycling; with a duration, as many as
fit (at least ``faults``), spread over the stream so each outage ends within it; and each outage's length."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from deploy.chaos import ChaosOptions, _with_remote, fault_timeline

KINDS = [("kill", f"service{i}") for i in range(6)] + [("down", "registry"), ("latency", "kafka")]


def test_without_a_duration_every_kind_once_then_cycling() -> None:
    options = ChaosOptions(faults=len(KINDS) * 2 + 3, gap_s=(1.0, 2.0))
    timeline = fault_timeline(KINDS, options, None, random.Random(7))
    faults = [fault for _, fault in timeline]
    assert len(faults) == len(KINDS) * 2 + 3
    assert sorted(faults[: len(KINDS)]) == sorted(KINDS)  # each kind once first
    assert faults[len(KINDS) : 2 * len(KINDS)] == faults[: len(KINDS)]  # then the same order again
    times = [moment for moment, _ in timeline]
    assert all(1.0 <= later - earlier <= 2.0 for earlier, later in zip([0.0, *times], times, strict=False))


def test_with_a_duration_as_many_as_fit_spread_over_the_stream() -> None:
    options = ChaosOptions(faults=3, outage_s=10.0, gap_s=(1.0, 3.0))
    timeline = fault_timeline(KINDS, options, 180.0, random.Random(3))
    window = 180.0 - 10.0
    assert len(timeline) == int(window // 12.0)  # an outage plus a mean gap each: 14, more than the 3 asked
    assert Counter(fault for _, fault in timeline[: len(KINDS)]) == Counter(KINDS)
    times = [moment for moment, _ in timeline]
    width = window / len(timeline)
    for slot, moment in enumerate(times):  # one per slot, its outage ending within the slot
        assert slot * width <= moment <= (slot + 1) * width - options.longest_outage_s
    assert times == sorted(times)


def test_with_a_duration_at_least_the_faults_asked_and_none_for_zero() -> None:
    options = ChaosOptions(faults=40, outage_s=10.0)
    timeline = fault_timeline(KINDS, options, 120.0, random.Random(1))
    assert len(timeline) == 40
    assert all(0.0 <= moment <= 110.0 for moment, _ in timeline)
    assert fault_timeline(KINDS, ChaosOptions(faults=0), 600.0, random.Random(1)) == []


def test_the_same_seed_the_same_timeline() -> None:
    options = ChaosOptions(faults=5, outage_s=5.0)
    assert fault_timeline(KINDS, options, 300.0, random.Random(9)) == fault_timeline(
        KINDS, options, 300.0, random.Random(9)
    )


def test_rate_and_load_factor_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="give one"):
        ChaosOptions(rate=100.0, load_factor=2.0)
    with pytest.raises(ValueError, match="minutes must be positive"):
        ChaosOptions(minutes=0)


def test_outages_last_as_the_issue_says_unless_one_length_is_given() -> None:
    options = ChaosOptions()
    assert options.outage("registry") == 20.0
    assert [options.outage(target) for target in ("mongodb", "hdfs", "gcs")] == [30.0, 30.0, 30.0]
    assert options.outage("kafka") == 20.0  # a toxic on the broker's link
    assert options.longest_outage_s == 30.0
    given = ChaosOptions(outage_s=2.0)
    assert {given.outage(target) for target in ("registry", "mongodb", "hdfs", "gcs", "kafka")} == {2.0}
    assert given.longest_outage_s == 2.0
    with pytest.raises(ValueError, match="outage_s must be positive"):
        ChaosOptions(outage_s=0)


def test_with_a_duration_the_slots_fit_the_longest_outage() -> None:
    options = ChaosOptions(faults=1, gap_s=(1.0, 3.0))  # the default outages: 30 s the longest
    timeline = fault_timeline(KINDS, options, 300.0, random.Random(2))
    window = 300.0 - 30.0
    assert len(timeline) == int(window // 32.0)
    width = window / len(timeline)
    for slot, (moment, _) in enumerate(timeline):
        assert slot * width <= moment <= (slot + 1) * width - 30.0


def test_the_services_remote_cluster_is_the_runs_own_broker() -> None:
    stack = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "REMOTE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092",
        "REMOTE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "REMOTE_KAFKA_SASL_USERNAME": "mirror",
    }
    own = {"REMOTE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:40001", "REMOTE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    assert _with_remote(stack, own) == {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092", **own}
