"""Generator settings (environment prefix ``GENERATOR_``); the command line overrides a few of them."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import TopicNamingSettings
from services.generator.anomalies import AnomalyKind
from services.generator.config import GeneratorConfig, seed_origin_ms
from services.generator.records import ALL_TOPICS
from services.generator.world import WorldSizes

# One set of defaults: the engine's configuration; the settings only name them for the environment.
_DEFAULTS = GeneratorConfig()
_RATES = _DEFAULTS.rates


class GeneratorSettings(TopicNamingSettings):
    """Shape of the generated stream, topic naming and pacing."""

    CATALOGUE_TOPICS = ALL_TOPICS
    TOPICS_USE = "the generator writes"

    model_config = SettingsConfigDict(env_prefix="GENERATOR_", extra="ignore", case_sensitive=False)

    seed: int = Field(default=_DEFAULTS.seed, description="GENERATOR_SEED: same seed, same events.")
    start_time: dt.datetime | None = Field(
        default=None,
        description="GENERATOR_START_TIME: ISO 8601 start of simulated time (default: derived from the seed, "
        "2026-01-01T00:00Z plus whole hours drawn from it; never the wall clock).",
    )
    rate_product_views: float = Field(default=_RATES["product_views"], ge=0, description="Product views per second.")
    rate_clickstream: float = Field(default=_RATES["clickstream"], ge=0, description="Clickstream events per second.")
    rate_orders: float = Field(
        default=_RATES["orders"], ge=0, description="New orders per second (each has 3 order events)."
    )
    rate_supplier_invoices: float = Field(
        default=_RATES["supplier_invoices"], ge=0, description="New invoices per second (+1 payment)."
    )
    rate_reference_updates: float = Field(
        default=_RATES["reference_updates"], ge=0, description="Product price changes per second."
    )
    jitter_ms: int = Field(
        default=_DEFAULTS.jitter_ms, ge=0, description="Delay bound of on-time events (event to produce time)."
    )
    late_fraction: float = Field(default=_DEFAULTS.late_fraction, ge=0, le=1, description="Share of late events.")
    max_lateness_s: float = Field(
        default=_DEFAULTS.max_lateness_ms / 1000, ge=0, description="Upper bound of produce time minus event time."
    )
    step_s: float = Field(
        default=_DEFAULTS.step_ms / 1000, gt=0, description="Event time between steps of an order or shipment."
    )
    burst_interval_s: float = Field(
        default=_DEFAULTS.burst_interval_s, ge=0, description="Mean time between bursts (0 = none)."
    )
    burst_duration_s: float = Field(default=_DEFAULTS.burst_duration_s, ge=0, description="Length of a burst.")
    burst_factor: float = Field(default=_DEFAULTS.burst_factor, ge=1, description="Rate multiplier inside a burst.")
    anomalies_per_minute: float = Field(
        default=_DEFAULTS.anomalies_per_minute,
        ge=0,
        description="Injected anomalies per minute of event time (enough for a short run to score).",
    )
    anomaly_kinds: str = Field(
        default=",".join(kind.value for kind in AnomalyKind),
        description="Comma-separated injections: traffic_spike, shipment_delay, error_burst, fraud_payment.",
    )
    products: int = Field(default=_DEFAULTS.sizes.products, ge=1)
    customers: int = Field(default=_DEFAULTS.sizes.customers, ge=1)
    suppliers: int = Field(default=_DEFAULTS.sizes.suppliers, ge=1)
    devices: int = Field(default=_DEFAULTS.sizes.devices, ge=1)
    pace: bool = Field(default=True, description="GENERATOR_PACE: follow the wall clock (false = full speed).")
    reference_snapshot: bool = Field(default=True, description="Publish every reference record at start.")
    create_topics: bool = Field(default=True, description="Create missing topics with the catalogue's config.")

    @field_validator("anomaly_kinds")
    @classmethod
    def _kinds(cls, value: str) -> str:
        for name in filter(None, (part.strip() for part in value.split(","))):
            AnomalyKind(name)
        return value

    def start_ms(self) -> int:
        """The origin of simulated time: ``start_time`` when set (naive times are UTC), else the seed's origin."""
        if self.start_time is None:
            return seed_origin_ms(self.seed)
        start = self.start_time if self.start_time.tzinfo else self.start_time.replace(tzinfo=dt.UTC)
        return int(start.timestamp() * 1000)

    def engine_config(self, start_time_ms: int | None = None) -> GeneratorConfig:
        return GeneratorConfig(
            seed=self.seed,
            start_time_ms=self.start_ms() if start_time_ms is None else start_time_ms,
            rates={
                "product_views": self.rate_product_views,
                "clickstream": self.rate_clickstream,
                "orders": self.rate_orders,
                "supplier_invoices": self.rate_supplier_invoices,
                "reference_updates": self.rate_reference_updates,
            },
            jitter_ms=self.jitter_ms,
            late_fraction=self.late_fraction,
            max_lateness_ms=int(self.max_lateness_s * 1000),
            step_ms=max(int(self.step_s * 1000), int(self.max_lateness_s * 1000) + 1),
            burst_interval_s=self.burst_interval_s,
            burst_duration_s=self.burst_duration_s,
            burst_factor=self.burst_factor,
            anomalies_per_minute=self.anomalies_per_minute,
            anomaly_kinds=tuple(
                AnomalyKind(name) for name in filter(None, (p.strip() for p in self.anomaly_kinds.split(",")))
            ),
            sizes=WorldSizes(self.products, self.customers, self.suppliers, self.devices),
        )

    def backlog_start(self, events: int, now_ms: int) -> dt.datetime:
        """A start (whole minutes) for an unpaced run of ``events`` whose simulated time ends near ``now_ms``: what
        callers pass as ``--start`` when the records must be recent (topic retention is by record timestamp)."""
        span_ms = int(events / max(self.events_per_second(), 1e-9) * 1000)
        return dt.datetime.fromtimestamp((now_ms - span_ms) // 60_000 * 60, dt.UTC)

    def events_per_second(self) -> float:
        """Approximate total event rate (orders emit about 8 records each, invoices two)."""
        return (
            self.rate_product_views
            + self.rate_clickstream
            + self.rate_orders * 8
            + self.rate_supplier_invoices * 2
            + self.rate_reference_updates
        )
