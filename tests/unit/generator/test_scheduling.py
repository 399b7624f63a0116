"""The simulated clock: items leave by time, then by scheduling order; arrivals follow the rate and the bursts."""

from __future__ import annotations

import random

import pytest

from services.generator.config import GeneratorConfig
from services.generator.records import PRODUCT_VIEWS, Emitted
from services.generator.scheduling import BUCKET_MS, SLICE_MS, Arrivals, Clock, Schedule

START = 1_767_225_600_000


def test_items_leave_by_time_then_in_scheduling_order_across_buckets() -> None:
    schedule = Schedule(START)
    times = [START + 5 * BUCKET_MS + 7, START + 3, START + 3, START + 2 * BUCKET_MS, START + 1, START + 3]
    for index, at in enumerate(times):
        schedule.push(at, index)
    popped = [schedule.pop() for _ in times]
    assert popped == sorted(((at, index) for index, at in enumerate(times)), key=lambda pair: pair)
    assert [index for _, index in popped[1:4]] == [1, 2, 5], "equal times keep the order they were scheduled in"
    with pytest.raises(IndexError):
        schedule.pop()


def test_an_item_scheduled_while_popping_still_leaves_in_order() -> None:
    schedule = Schedule(START)
    schedule.push(START + 3 * BUCKET_MS, "late")
    assert schedule.pop() == (START + 3 * BUCKET_MS, "late")
    schedule.push(START + 3 * BUCKET_MS + 10, "b")  # in the current bucket (now the heap)
    schedule.push(START + 3 * BUCKET_MS + 5, "a")
    schedule.push(START + 9 * BUCKET_MS, "c")
    assert [schedule.pop()[1] for _ in range(3)] == ["a", "b", "c"]


def test_drain_returns_everything_in_order_and_empties_the_schedule() -> None:
    schedule = Schedule(START)
    for at in (START + 4 * BUCKET_MS, START + 10, START + 2 * BUCKET_MS):
        schedule.push(at, at)
    assert schedule.drain() == [(START + 10, START + 10), (START + 2000, START + 2000), (START + 4000, START + 4000)]
    assert schedule.drain() == []


def test_arrivals_without_bursts_average_the_rate() -> None:
    arrivals = Arrivals(GeneratorConfig(start_time_ms=START, burst_interval_s=0), random.Random(1))
    gaps = [arrivals.gap(10.0, START + i) for i in range(20_000)]
    assert min(gaps) >= 1
    assert 95 < sum(gaps) / len(gaps) < 105, "10 per second: 100 ms apart on average"
    assert not arrivals.in_burst(START)


def test_arrivals_inside_a_burst_come_burst_factor_times_faster() -> None:
    config = GeneratorConfig(start_time_ms=START, burst_interval_s=60, burst_duration_s=3_600, burst_factor=4)
    arrivals = Arrivals(config, random.Random(2))
    inside = arrivals.burst_start
    assert arrivals.in_burst(inside) and not arrivals.in_burst(inside - 1)
    gaps = [arrivals.gap(10.0, inside) for _ in range(20_000)]
    assert 23 < sum(gaps) / len(gaps) < 27, "4 x 10 per second: 25 ms apart on average"


def test_the_clock_ticks_each_family_at_its_rate_and_a_zero_rate_never() -> None:
    schedule = Schedule(START)
    clock = Clock(schedule, Arrivals(GeneratorConfig(start_time_ms=START, burst_interval_s=0), random.Random(3)), START)
    ticks: list[int] = []
    clock.every(2.0, ticks.append)
    clock.every(0.0, lambda at: pytest.fail("a zero rate never ticks"))
    while len(ticks) < 2_000:
        at, tick = schedule.pop()
        tick(at)
    assert ticks == sorted(ticks) and ticks[0] > START
    assert 450 < (ticks[-1] - ticks[0]) / (len(ticks) - 1) < 550, "2 per second: 500 ms apart on average"


def test_a_stream_builds_a_slice_of_records_per_tick_and_schedules_them_at_their_produce_time() -> None:
    schedule = Schedule(START)
    clock = Clock(schedule, Arrivals(GeneratorConfig(start_time_ms=START, burst_interval_s=0), random.Random(4)), START)
    built: list[int] = []

    def build(at: int) -> Emitted:
        built.append(at)
        return Emitted(PRODUCT_VIEWS, "k", {}, at, at + 100)

    clock.stream(100.0, build)
    at, tick = schedule.pop()
    tick(at)
    assert built and built[0] == at and all(at <= t < at + SLICE_MS for t in built)
    pending = schedule.drain()
    records = [(when, item.event_time_ms) for when, item in pending if isinstance(item, Emitted)]
    assert records == [(t + 100, t) for t in built]
    following = [when for when, item in pending if not isinstance(item, Emitted)]
    assert len(following) == 1 and following[0] >= at + SLICE_MS, "the next tick starts where the slice ends"
    assert following[0] - built[-1] < SLICE_MS, "at the first arrival after the slice (one gap after the last)"
