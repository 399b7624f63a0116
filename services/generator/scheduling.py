"""The simulated clock: when every pending record, family tick and label is due, the one path to schedule them.

Everything the engine will do is an item in one :class:`Schedule`, ordered by its time (a record's produce time,
a tick's event time) and, at equal times, by the order it was scheduled: records, family ticks and anomaly
labels all go through :meth:`Schedule.push`. :class:`Arrivals` draws the exponential inter-arrival times of a
family at its rate, times the burst factor inside burst windows; :class:`Clock` keeps each family ticking.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from math import log as _log
from typing import Any

from services.generator.config import GeneratorConfig
from services.generator.records import Emitted

# Pending items live in a small heap for the current bucket of simulated time and in per-bucket lists beyond
# it; a bucket is heapified when the clock reaches it (one O(n) pass instead of a heap push per item).
BUCKET_MS = 1_000
# The busy families (product views, clickstream) build this much simulated time per tick.
SLICE_MS = 250
BURST_HISTORY = 64  # burst windows remembered for in_burst()
NEVER = 1 << 62
_heappush = heapq.heappush
_heappop = heapq.heappop


class Schedule:
    """Pending items by time, then by scheduling order (a heap for the current second, a list per later one)."""

    def __init__(self, start_ms: int) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._buckets: dict[int, list[tuple[int, int, Any]]] = {}
        self._horizon = (start_ms // BUCKET_MS + 1) * BUCKET_MS  # heap items are all before it
        self._seq = itertools.count()

    def push(self, at_ms: int, payload: Any) -> None:
        """Schedule ``payload`` at ``at_ms`` (after everything already scheduled at that time)."""
        entry = (at_ms, next(self._seq), payload)
        if at_ms < self._horizon:
            _heappush(self._heap, entry)
            return
        bucket = at_ms // BUCKET_MS
        pending = self._buckets.get(bucket)
        if pending is None:
            self._buckets[bucket] = [entry]
        else:
            pending.append(entry)

    def pop(self) -> tuple[int, Any]:
        """The earliest item and its time; ``IndexError`` when nothing is scheduled."""
        if not self._heap:
            self._advance()
        at, _, payload = _heappop(self._heap)
        return at, payload

    def __len__(self) -> int:
        """Items scheduled (a pass over the buckets: for metrics, not per item)."""
        return len(self._heap) + sum(map(len, self._buckets.values()))

    def drain(self) -> list[tuple[int, Any]]:
        """Every pending item in order; the schedule is empty afterwards."""
        pending = sorted([*self._heap, *(entry for bucket in self._buckets.values() for entry in bucket)])
        self._heap, self._buckets = [], {}
        return [(at, payload) for at, _, payload in pending]

    def _advance(self) -> None:
        """The heap is empty: make the next non-empty bucket the heap."""
        buckets = self._buckets
        if not buckets:
            raise IndexError("nothing is scheduled: every rate is zero")
        while True:
            pending = buckets.pop(self._horizon // BUCKET_MS, None)
            self._horizon += BUCKET_MS
            if pending is not None:
                heapq.heapify(pending)
                self._heap = pending
                return


class Arrivals:
    """Exponential inter-arrival times at a rate, and the burst windows that multiply every bursty rate."""

    def __init__(self, config: GeneratorConfig, rng: random.Random) -> None:
        self._interval_s = config.burst_interval_s
        self._duration_s = config.burst_duration_s
        self.factor = config.burst_factor
        self._rng = rng
        self.draw = rng.random
        self.burst_start, self.burst_end = self._next_burst(config.start_time_ms)
        self._bursts: deque[tuple[int, int]] = deque([(self.burst_start, self.burst_end)], maxlen=BURST_HISTORY)

    def _next_burst(self, after_ms: int) -> tuple[int, int]:
        if self._interval_s <= 0 or self._duration_s <= 0 or self.factor <= 1:
            return (NEVER, NEVER)
        start = after_ms + int(self._rng.expovariate(1.0 / self._interval_s) * 1000)
        return start, start + int(self._duration_s * 1000)

    def in_burst(self, at_ms: int) -> bool:
        """Whether ``at_ms`` lies in a burst window (the current one or one of the last ``BURST_HISTORY``)."""
        return any(start <= at_ms < end for start, end in self._bursts)

    def gap(self, rate: float, now_ms: int, bursty: bool = True) -> int:
        """Exponential inter-arrival time (ms) at ``rate`` per second, times the burst factor inside bursts."""
        if bursty:
            while now_ms >= self.burst_end:
                self.burst_start, self.burst_end = self._next_burst(self.burst_end)
                self._bursts.append((self.burst_start, self.burst_end))
            if now_ms >= self.burst_start:
                rate *= self.factor
        return max(1, int(-_log(1.0 - self.draw()) * 1000.0 / rate))


class Clock:
    """Keeps each family ticking on the schedule at its rate from the start of simulated time."""

    def __init__(self, schedule: Schedule, arrivals: Arrivals, start_ms: int) -> None:
        self.schedule = schedule
        self.arrivals = arrivals
        self.start_ms = start_ms

    def every(self, rate: float, action: Callable[[int], object], *, bursty: bool = True) -> None:
        """Call ``action(event_time)`` at each arrival of a family at ``rate`` per second (0 = never)."""
        if rate <= 0:
            return
        push, gap = self.schedule.push, self.arrivals.gap

        def tick(at: int) -> None:
            action(at)
            push(at + gap(rate, at, bursty), tick)

        push(self.start_ms + gap(rate, self.start_ms, bursty), tick)

    def stream(self, rate: float, build: Callable[[int], Emitted]) -> None:
        """A busy family at ``rate`` per second (0 = never): each tick builds ``SLICE_MS`` of simulated time of
        records with ``build(event_time)`` and schedules them at their produce times."""
        if rate <= 0:
            return
        push, arrivals = self.schedule.push, self.arrivals
        gap, random_ = arrivals.gap, arrivals.draw
        scale = 1000.0 / rate

        def tick(at: int) -> None:
            end = at + SLICE_MS
            while at < end:
                item = build(at)
                push(item.produce_time_ms, item)
                if arrivals.burst_start <= at or at >= arrivals.burst_end:
                    at += gap(rate, at)
                else:  # before the next burst: the calm rate, drawn like gap() (no burst bookkeeping)
                    at += int(-_log(1.0 - random_()) * scale) or 1
            push(at, tick)

        push(self.start_ms + gap(rate, self.start_ms), tick)
