"""The generator's configuration: every value that shapes the generated stream, with the one set of defaults."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from services.generator.anomalies import AnomalyKind
from services.generator.world import WorldSizes

HOUR_MS = 3_600_000
# The default origin of simulated time: this epoch plus a whole number of hours (up to a year) drawn from the seed.
SEED_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SEED_ORIGIN_SPAN_H = 365 * 24

# Families with their own rate (events per second of simulated time). Shipment events follow orders and
# payments follow invoices; they have no rate of their own.
RATED_FAMILIES = ("product_views", "clickstream", "orders", "supplier_invoices", "reference_updates")


def seed_origin_ms(seed: int) -> int:
    """The default start of simulated time for ``seed``: ``SEED_EPOCH_MS`` plus whole hours drawn from the seed
    (the same seed always starts at the same instant; never the wall clock)."""
    return SEED_EPOCH_MS + random.Random(f"origin/{seed}").randrange(SEED_ORIGIN_SPAN_H) * HOUR_MS


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that shapes the generated stream (pure values; the settings class builds it)."""

    seed: int = 42
    start_time_ms: int = -1  # the origin of simulated time; negative = the seed's (seed_origin_ms)
    rates: dict[str, float] = field(
        default_factory=lambda: {
            "product_views": 120.0,
            "clickstream": 60.0,
            "orders": 8.0,
            "supplier_invoices": 2.0,
            "reference_updates": 0.2,
        }
    )
    jitter_ms: int = 200
    late_fraction: float = 0.02
    max_lateness_ms: int = 30_000
    step_ms: int = 45_000
    burst_interval_s: float = 300.0
    burst_duration_s: float = 20.0
    burst_factor: float = 4.0
    anomalies_per_minute: float = 3.0  # per minute of event time: enough for a 100,000-event run to score
    anomaly_kinds: tuple[AnomalyKind, ...] = tuple(AnomalyKind)
    normal_delay_share: float = 0.06
    producer: str = "generator"
    sizes: WorldSizes = field(default_factory=WorldSizes)

    def __post_init__(self) -> None:
        if self.start_time_ms < 0:
            object.__setattr__(self, "start_time_ms", seed_origin_ms(self.seed))
        unknown = set(self.rates) - set(RATED_FAMILIES)
        if unknown:
            raise ValueError(f"unknown rate families {sorted(unknown)}; known: {list(RATED_FAMILIES)}")
        if any(rate < 0 for rate in self.rates.values()):
            raise ValueError("rates must not be negative")
        if not 0 <= self.late_fraction <= 1:
            raise ValueError("late_fraction must be within [0, 1]")
        if self.jitter_ms < 0 or self.max_lateness_ms < self.jitter_ms:
            raise ValueError("need 0 <= jitter_ms <= max_lateness_ms")
        if self.step_ms <= self.max_lateness_ms:
            raise ValueError("step_ms must exceed max_lateness_ms so that events of one key stay in order")
        if self.burst_factor < 1 or self.burst_duration_s < 0 or self.burst_interval_s < 0:
            raise ValueError("bursts need burst_factor >= 1 and non-negative durations")
        if self.anomalies_per_minute < 0:
            raise ValueError("anomalies_per_minute must not be negative")
