"""The event engine: composes the world, the families, anomaly injection and the schedule into one stream.

The engine is pure (no broker, no wall clock). It owns the run's ``random.Random``, seeded once, and hands it
to the parts in a fixed order: the world (:mod:`~services.generator.world`), the burst windows and family
ticks (:mod:`~services.generator.scheduling`), the builders of each family's records
(:mod:`~services.generator.families`) and the injected anomalies (:mod:`~services.generator.injection`). Records
leave in *produce time* order (event time plus a jitter, or a bounded lateness for a share of the events:
:mod:`~services.generator.envelope`), so late events arrive out of order in event time.

The same configuration, seed and start time give the same sequence of records, ids included.
"""

from __future__ import annotations

import random

from services.generator.anomalies import Injection
from services.generator.config import GeneratorConfig
from services.generator.envelope import Envelopes
from services.generator.families import Families
from services.generator.injection import Injector
from services.generator.records import Emitted, Planned
from services.generator.scheduling import Arrivals, Clock, Schedule
from services.generator.world import World, build_world


class Engine:
    """Produces the stream: ``reference_snapshot()`` first, then ``take()`` (or ``next()``) forever, ``finish()``
    at the end."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        start = config.start_time_ms
        self.rng = rng = random.Random(config.seed)
        # The order of construction is the order of draws from ``rng``: part of what a seed means.
        self.world: World = build_world(rng, config.sizes)
        self.now_ms = start
        self._schedule = schedule = Schedule(start)
        self._arrivals = arrivals = Arrivals(config, rng)
        envelopes = Envelopes(config, rng.random)
        self.families = families = Families(config, rng, self.world, envelopes, schedule.push)
        self.injector = Injector(config, families, schedule.push)
        clock = Clock(schedule, arrivals, start)
        rates = config.rates
        clock.stream(rates.get("product_views", 0.0), families.product_view)
        clock.stream(rates.get("clickstream", 0.0), families.click)
        clock.every(rates.get("orders", 0.0), families.order)
        clock.every(rates.get("supplier_invoices", 0.0), families.invoice)
        clock.every(rates.get("reference_updates", 0.0), families.price_change)
        if config.anomaly_kinds:
            clock.every(config.anomalies_per_minute / 60.0, self.injector.inject, bursty=False)

    @property
    def anomalies_injected(self) -> dict[str, int]:
        """Labelled anomalies so far, by kind."""
        return self.injector.injected

    @property
    def scheduled(self) -> int:
        """Records, ticks and labels scheduled: the open entities' future records (what the engine holds grows with
        the rates and the length of an order's life, not with the length of the run)."""
        return len(self._schedule)

    def in_burst(self, at_ms: int) -> bool:
        """Whether ``at_ms`` lies in a burst window (the current one or one of the recent ones)."""
        return self._arrivals.in_burst(at_ms)

    def reference_snapshot(self) -> list[Emitted]:
        """Every reference record, effective at the start time (emit these before the events)."""
        return self.families.reference_snapshot()

    def next(self) -> Emitted:
        """The next record in produce-time order (events, reference updates and anomaly labels)."""
        return self.take(1)[0]

    def take(self, count: int) -> list[Emitted]:
        """The next ``count`` records in produce-time order, running the family ticks that fall due."""
        pop = self._schedule.pop
        label = self.injector.label
        items: list[Emitted] = []
        append = items.append
        at = self.now_ms
        while count > 0:
            at, payload = pop()
            kind = type(payload)
            if kind is Planned:
                payload = payload.emitted()
                kind = Emitted
            if kind is Emitted:
                if payload.injection is not None:
                    payload.injection.emitted(payload.event_id, payload.event_time_ms)
                append(payload)
                count -= 1
            elif kind is Injection:
                append(label(payload, at))
                count -= 1
            else:
                self.now_ms = at
                payload(at)  # a family's tick
        self.now_ms = at
        return items

    def finish(self) -> list[Emitted]:
        """Complete the anomalies in progress at the end of a bounded run: the rest of their events (in produce
        order, nothing else that was scheduled) and their labels, so that every label describes a whole anomaly.
        The engine is spent afterwards."""
        items: list[Emitted] = []
        for at, planned in self._schedule.drain():
            payload = planned.emitted() if type(planned) is Planned else planned
            if type(payload) is Emitted and payload.injection is not None:
                payload.injection.emitted(payload.event_id, payload.event_time_ms)
                items.append(payload)
            elif type(payload) is Injection and not payload.labelled:
                items.append(self.injector.label(payload, at))
                self.now_ms = at
        return items
