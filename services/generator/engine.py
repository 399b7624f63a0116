"""The event engine: a seeded, simulated clock that emits every event family of the platform.

The engine is pure (no broker, no wall clock): it owns a ``random.Random`` seeded once, a world
(:mod:`services.generator.world`) and a schedule of pending items ordered by *produce time* (a heap for the
current second of simulated time, one list per later second). Each family has a tick whose inter-arrival
times are exponential at the family's rate (times the burst factor inside burst windows); the busiest
families build ``SLICE_MS`` of simulated time per tick. An event's *event time* is when it happened; its
*produce time* is when it is handed to Kafka: ``produce = event + delay`` where the delay is a small jitter
for most events and up to ``max_lateness_ms`` for the configured share of late events. Emission follows
produce time, so late events arrive out of order in event time, with a hard bound on the lateness.

Multi-step entities (orders, shipments, invoices and their payments) are planned when they start: all their
future events are built at once and scheduled, ``step_ms`` apart in event time, with ``step_ms`` larger than
the maximum lateness so that the events of one key always leave in order. Business dates (order, ship, due,
delivery and payment dates) follow a compressed calendar: one step of a shipment is one day of transit.

The same configuration, seed and start time give the same sequence of events, ids included.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from math import log as _log
from typing import Any
from zoneinfo import ZoneInfo

from services.generator.anomalies import AnomalyKind, Injection, label_record
from services.generator.world import (
    CENT,
    REFERRERS,
    Customer,
    Product,
    StoreSpec,
    Warehouse,
    World,
    WorldSizes,
    build_world,
    customer_record,
    local_price,
    product_record,
    store_record,
    supplier_record,
    warehouse_record,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# The default origin of simulated time: this epoch plus a whole number of hours (up to a year) drawn from the seed.
SEED_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SEED_ORIGIN_SPAN_H = 365 * 24
_heappush = heapq.heappush
_heappop = heapq.heappop

# Catalogue names of the topics the generator writes.
PRODUCT_VIEWS = "product_views"
CLICKSTREAM = "web.clickstream.v1"
ORDERS = "commerce.orders.v1"
SHIPMENTS = "logistics.shipment_events.v1"
INVOICES = "finance.supplier_invoices.v1"
PAYMENTS = "finance.supplier_payments.v1"
ANOMALY_LABELS = "analytics.anomaly_labels.v1"
REF_PRODUCTS = "reference.products.v1"
REF_CUSTOMERS = "reference.customers.v1"
REF_STORES = "reference.stores.v1"
REF_SUPPLIERS = "reference.suppliers.v1"
REF_WAREHOUSES = "reference.warehouses.v1"

EVENT_TOPICS = (PRODUCT_VIEWS, CLICKSTREAM, ORDERS, SHIPMENTS, INVOICES, PAYMENTS)
REFERENCE_TOPICS = (REF_STORES, REF_WAREHOUSES, REF_SUPPLIERS, REF_PRODUCTS, REF_CUSTOMERS)
ALL_TOPICS = (*REFERENCE_TOPICS, *EVENT_TOPICS, ANOMALY_LABELS)

# Families with their own rate (events per second of simulated time). Shipment events follow orders and
# payments follow invoices; they have no rate of their own.
RATED_FAMILIES = ("product_views", "clickstream", "orders", "supplier_invoices", "reference_updates")

CLICK_TYPES = ("SEARCH", "PURCHASE", "ORDER_COMPLETE", "ORDER_FAILED", "ERROR")
CLICK_WEIGHTS = (0.25, 0.50, 0.70, 0.90, 1.0)  # cumulative .25/.25/.20/.20/.10
SHOP_SERVICES = ("checkout", "search", "catalog", "payments", "auth", "cart")
ERROR_CODES = (
    ("PAYMENT_TIMEOUT", "payment provider did not answer within 10s"),
    ("HTTP_503", "upstream service unavailable"),
    ("DB_POOL_EXHAUSTED", "no database connection available"),
    ("HTTP_500", "internal server error"),
)
SEARCH_TERMS = ("usb c cable", "running shoes", "coffee grinder", "desk lamp", "puzzle 1000", "headphones")
FAILURE_REASONS = ("payment declined", "out of stock", "address invalid", "fraud check failed")
SHIPMENT_TYPES = (("STANDARD", 4, "LOW"), ("EXPRESS", 2, "MEDIUM"), ("OVERNIGHT", 1, "HIGH"))
DELAY_REASONS = ("WEATHER", "CUSTOMS", "TRAFFIC")
PAYMENT_METHODS = ("CARD", "PAYPAL", "BANK_TRANSFER", "GIFT_CARD")
TRANSIT_HUBS = (("BE", "Liege"), ("DE", "Cologne"), ("FR", "Lille"), ("NL", "Venlo"), ("PL", "Lodz"))


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


@dataclass(slots=True)
class Emitted:
    """One record ready for Kafka: catalogue topic, key, Avro-ready value and its two clocks."""

    topic: str
    key: str
    value: dict[str, Any]
    event_time_ms: int
    produce_time_ms: int
    injection: Injection | None = None

    @property
    def event_id(self) -> str:
        return str(self.value["metadata"]["event_id"])

    @property
    def lateness_ms(self) -> int:
        return self.produce_time_ms - self.event_time_ms


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
# Pending items live in a small heap for the current bucket of simulated time and in per-bucket lists beyond
# it; a bucket is heapified when the clock reaches it (one O(n) pass instead of a heap push per item).
BUCKET_MS = 1_000
# The busy families (product views, clickstream) build this much simulated time per tick.
SLICE_MS = 250
BURST_HISTORY = 64  # burst windows remembered for in_burst()
SECONDS = tuple(f"{second:02d}" for second in range(60))
ZERO = Decimal("0.00")
PENALTY_RATE = Decimal("0.05")
MIN_PRICE = Decimal("0.50")
WHOLE = Decimal("1")


@dataclass(slots=True)
class _Session:
    session_id: str
    user_id: str | None
    country: str
    city: str | None
    device_type: str
    started_ms: int
    geo_location: dict[str, str | None]


class Engine:
    """Produces the stream: ``reference_snapshot()`` first, then ``next()`` forever, ``finish()`` at the end."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.world: World = build_world(self.rng, config.sizes)
        self.now_ms = config.start_time_ms
        rng = self.rng
        self._random = rng.random
        # Event ids: a version 4 UUID prefix drawn once per run (seed and start time), then a counter.
        bits = random.Random(f"{config.seed}/{config.start_time_ms}").getrandbits(128)
        prefix = f"{(bits & _UUID_CLEAR) | _UUID_SET:032x}"
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-{prefix[20:22]}"
        # hex(n)[-10:] of a counter from 2**40 + 1: the last ten hex digits, zero-padded, at a fraction of the
        # cost of format(); 2**40 ids per run.
        self._id_counter = itertools.count((1 << 40) + 1)
        self._heap: list[tuple[int, int, Any]] = []
        self._buckets: dict[int, list[tuple[int, int, Any]]] = {}
        self._horizon = (config.start_time_ms // BUCKET_MS + 1) * BUCKET_MS  # heap items are all before it
        self._seq = itertools.count()
        self._counters: dict[str, int] = {}
        world = self.world
        self._zones = {store.store_id: ZoneInfo(store.spec.timezone) for store in world.stores}
        self._stores = {store.store_id: store.spec for store in world.stores}
        self._local_warehouses = {
            store.store_id: [w for w in world.warehouses if w.country == store.store_id] for store in world.stores
        }
        self._devices = [(d.device_id, d.store_id, d.remote_ip) for d in world.devices]
        self._products = world.products
        self._product_weights = world.product_weights
        self._producer = config.producer
        self._jitter_ms = config.jitter_ms
        self._weight_total = world.product_weights[-1]
        self._local_times: dict[str, tuple[int, str]] = {}
        self._local_prices: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._sessions: list[_Session] = []
        self._recent_orders: deque[str] = deque(maxlen=200)
        self._pending: list[Injection] = []
        self.anomalies_injected: dict[str, int] = {}
        self._late_fraction = config.late_fraction
        self._on_time_share = 1.0 - config.late_fraction
        self._late_span = config.max_lateness_ms - config.jitter_ms + 1
        self._jitter_span = config.jitter_ms + 1
        self._burst_start, self._burst_end = self._next_burst(config.start_time_ms)
        self._bursts: deque[tuple[int, int]] = deque([(self._burst_start, self._burst_end)], maxlen=BURST_HISTORY)
        rates = config.rates
        start = config.start_time_ms
        ticks = (
            ("product_views", self._views_tick),
            ("clickstream", self._clicks_tick),
            ("orders", self._orders_tick),
            ("supplier_invoices", self._invoices_tick),
            ("reference_updates", self._reference_tick),
        )
        for family, tick in ticks:
            rate = rates.get(family, 0.0)
            if rate > 0:
                self._push(start + self._gap(rate, start), tick)
        self._anomaly_rate = config.anomalies_per_minute / 60.0
        if self._anomaly_rate > 0 and config.anomaly_kinds:
            self._push(start + self._gap(self._anomaly_rate, start, bursty=False), self._anomalies_tick)

    # -- ids and envelopes ---------------------------------------------------------------------------------
    def _uuid(self) -> str:
        """A version 4 (RFC 4122 variant) UUID: the run's random prefix and a 40-bit counter."""
        return self._id_prefix + hex(next(self._id_counter))[-10:]

    def _next_id(self, prefix: str) -> str:
        """The next business id of a kind: ``O-000000001``, ``SH-000000001``, ..."""
        count = self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}-{count:09d}"

    def _delay(self) -> int:
        """Produce time minus event time: a jitter, or for the late share up to the maximum lateness."""
        roll = self._random()
        late = self._late_fraction
        if roll < late:
            return self._jitter_ms + int(roll / late * self._late_span)
        return int((roll - late) / self._on_time_share * self._jitter_span)

    def _metadata(self, event_time_ms: int, produce_time_ms: int) -> dict[str, Any]:
        return {
            "event_id": self._id_prefix + hex(next(self._id_counter))[-10:],
            "event_time": event_time_ms,
            "ingest_time": produce_time_ms,
            "producer": self._producer,
            "trace_context": None,
        }

    def _emit(self, item: Emitted) -> None:
        """Schedule ``item`` at its produce time (and count it for its injection)."""
        injection = item.injection
        if injection is not None:
            injection.add(item.value["metadata"]["event_id"], item.event_time_ms, item.produce_time_ms)
        self._push(item.produce_time_ms, item)

    def _make(
        self,
        topic: str,
        key: str,
        value: dict[str, Any],
        event_time_ms: int,
        injection: Injection | None = None,
    ) -> None:
        """Add the envelope to ``value`` (the event's fields) and schedule it."""
        roll = self._random()
        late = self._late_fraction
        if roll < late:
            produce = event_time_ms + self._jitter_ms + int(roll / late * self._late_span)
        else:
            produce = event_time_ms + int((roll - late) / self._on_time_share * self._jitter_span)
        event_id = self._id_prefix + hex(next(self._id_counter))[-10:]
        value["metadata"] = {
            "event_id": event_id,
            "event_time": event_time_ms,
            "ingest_time": produce,
            "producer": self._producer,
            "trace_context": None,
        }
        if injection is not None:
            injection.add(event_id, event_time_ms, produce)
        entry = (produce, next(self._seq), Emitted(topic, key, value, event_time_ms, produce, injection))
        if produce < self._horizon:
            _heappush(self._heap, entry)
        else:
            pending = self._buckets.get(produce // BUCKET_MS)
            if pending is None:
                self._buckets[produce // BUCKET_MS] = [entry]
            else:
                pending.append(entry)

    # -- scheduling ----------------------------------------------------------------------------------------
    def _push(self, at_ms: int, payload: Any) -> None:
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

    def _next_burst(self, after_ms: int) -> tuple[int, int]:
        config = self.config
        if config.burst_interval_s <= 0 or config.burst_duration_s <= 0 or config.burst_factor <= 1:
            return (1 << 62, 1 << 62)
        start = after_ms + int(self.rng.expovariate(1.0 / config.burst_interval_s) * 1000)
        return start, start + int(config.burst_duration_s * 1000)

    def in_burst(self, at_ms: int) -> bool:
        """Whether ``at_ms`` lies in a burst window (the current one or one of the last ``BURST_HISTORY``)."""
        return any(start <= at_ms < end for start, end in self._bursts)

    def _gap(self, rate: float, now_ms: int, bursty: bool = True) -> int:
        """Exponential inter-arrival time (ms) at ``rate`` per second, times the burst factor inside bursts."""
        if bursty:
            while now_ms >= self._burst_end:
                self._burst_start, self._burst_end = self._next_burst(self._burst_end)
                self._bursts.append((self._burst_start, self._burst_end))
            if now_ms >= self._burst_start:
                rate *= self.config.burst_factor
        return max(1, int(-_log(1.0 - self._random()) * 1000.0 / rate))

    def _busy_tick(self, at: int, rate: float, build: Any, tick: Any) -> None:
        """Build one busy family's events for the next ``SLICE_MS`` of simulated time and schedule them."""
        end = at + SLICE_MS
        scale = 1000.0 / rate
        random_ = self._random
        seq = self._seq
        heap, horizon, buckets = self._heap, self._horizon, self._buckets
        while at < end:
            item = build(at)
            produce = item.produce_time_ms
            entry = (produce, next(seq), item)
            if produce < horizon:
                _heappush(heap, entry)
            else:
                pending = buckets.get(produce // BUCKET_MS)
                if pending is None:
                    buckets[produce // BUCKET_MS] = [entry]
                else:
                    pending.append(entry)
            if self._burst_start <= at or at >= self._burst_end:
                at += self._gap(rate, at)
            else:
                at += int(-_log(1.0 - random_()) * scale) or 1
        self._push(at, tick)

    def _views_tick(self, at: int) -> None:
        self._busy_tick(at, self.config.rates["product_views"], self._product_view, self._views_tick)

    def _clicks_tick(self, at: int) -> None:
        self._busy_tick(at, self.config.rates["clickstream"], self._click, self._clicks_tick)

    def _orders_tick(self, at: int) -> None:
        self._order(at)
        self._push(at + self._gap(self.config.rates["orders"], at), self._orders_tick)

    def _invoices_tick(self, at: int) -> None:
        self._invoice(at)
        self._push(at + self._gap(self.config.rates["supplier_invoices"], at), self._invoices_tick)

    def _reference_tick(self, at: int) -> None:
        self._price_change(at)
        self._push(at + self._gap(self.config.rates["reference_updates"], at), self._reference_tick)

    def _anomalies_tick(self, at: int) -> None:
        self._inject(at)
        self._push(at + self._gap(self._anomaly_rate, at, bursty=False), self._anomalies_tick)

    # -- the stream ----------------------------------------------------------------------------------------
    def reference_snapshot(self) -> list[Emitted]:
        """Every reference record, effective at the start time (emit these before the events)."""
        at = self.config.start_time_ms
        world = self.world
        items: list[Emitted] = []
        for store in world.stores:
            items.append(self._reference(REF_STORES, store.store_id, store_record, store, at))
        for warehouse in world.warehouses:
            items.append(self._reference(REF_WAREHOUSES, warehouse.warehouse_id, warehouse_record, warehouse, at))
        for supplier in world.suppliers:
            items.append(self._reference(REF_SUPPLIERS, supplier.supplier_id, supplier_record, supplier, at))
        for product in world.products:
            items.append(self._reference(REF_PRODUCTS, product.product_id, product_record, product, at))
        for customer in world.customers:
            items.append(self._reference(REF_CUSTOMERS, customer.customer_id, customer_record, customer, at))
        return items

    def _reference(self, topic: str, key: str, build: Any, entity: Any, at: int) -> Emitted:
        metadata = self._metadata(at, at)
        return Emitted(topic, key, build(entity, metadata), at, at)

    def next(self) -> Emitted:
        """The next record in produce-time order (events, reference updates and anomaly labels)."""
        heappop = _heappop
        while True:
            heap = self._heap
            if not heap:
                self._advance()
                heap = self._heap
            at, _, payload = heappop(heap)
            self.now_ms = at
            kind = type(payload)
            if kind is Emitted:
                injection = payload.injection
                if injection is not None:
                    injection.emitted(payload.event_id, payload.event_time_ms)
                return payload  # type: ignore[no-any-return]
            if kind is Injection:
                return self._label(payload, at, emitted_only=False)
            payload(at)  # a family's tick

    def take(self, count: int) -> list[Emitted]:
        """The next ``count`` records (what ``count`` calls of ``next()`` return)."""
        heap = self._heap
        heappop = _heappop
        items: list[Emitted] = []
        append = items.append
        at = self.now_ms
        while count > 0:
            if not heap:
                self._advance()
                heap = self._heap
            at, _, payload = heappop(heap)
            kind = type(payload)
            if kind is Emitted:
                if payload.injection is not None:
                    payload.injection.emitted(payload.event_id, payload.event_time_ms)
                append(payload)
                count -= 1
                continue
            self.now_ms = at
            if kind is Injection:
                append(self._label(payload, at, emitted_only=False))
                count -= 1
            else:
                payload(at)  # a family's tick
                heap = self._heap
        self.now_ms = at
        return items

    def finish(self) -> list[Emitted]:
        """Complete the anomalies in progress at the end of a bounded run: the rest of their events (in produce
        order, nothing else that was scheduled) and their labels, so that every label describes a whole anomaly.
        The engine is spent afterwards."""
        pending = sorted([*self._heap, *(entry for bucket in self._buckets.values() for entry in bucket)])
        self._heap, self._buckets = [], {}
        items: list[Emitted] = []
        for at, _, payload in pending:
            if type(payload) is Emitted and payload.injection is not None:
                payload.injection.emitted(payload.event_id, payload.event_time_ms)
                items.append(payload)
            elif type(payload) is Injection and not payload.labelled:
                items.append(self._label(payload, at, emitted_only=False))
                self.now_ms = at
        self._pending = [i for i in self._pending if not i.labelled]
        return items

    def _label(self, injection: Injection, at: int, *, emitted_only: bool) -> Emitted:
        injection.labelled = True
        self.anomalies_injected[injection.kind.value] = self.anomalies_injected.get(injection.kind.value, 0) + 1
        metadata = self._metadata(at, at)
        record = label_record(injection, metadata, emitted_only=emitted_only)
        return Emitted(ANOMALY_LABELS, injection.entity_key, record, at, at)

    # -- shared draws --------------------------------------------------------------------------------------
    def _popular_product(self) -> Product:
        return self._products[bisect_right(self._product_weights, self._random() * self._weight_total)]

    def _local_price(self, product: Product, store: StoreSpec) -> Decimal:
        """``local_price`` cached per product and store (until the product's price changes)."""
        key = (product.product_id, store.store_id)
        cached = self._local_prices.get(key)
        if cached is not None and cached[0] is product.price_eur:
            return cached[1]
        price = local_price(product, store)
        self._local_prices[key] = (product.price_eur, price)
        return price

    def _randint(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]``."""
        return low + int(self._random() * (high - low + 1))

    def _local_time(self, store_id: str, at: int) -> str:
        """Wall-clock time of ``at`` in the store's zone, ISO 8601 without offset (zone lookups once a minute:
        every zone's offset is a whole number of minutes)."""
        minute = at // 60_000
        cached = self._local_times.get(store_id)
        if cached is None or cached[0] != minute:
            local = dt.datetime.fromtimestamp(minute * 60, self._zones[store_id])
            cached = (minute, local.strftime("%Y-%m-%dT%H:%M:"))
            self._local_times[store_id] = cached
        return cached[1] + SECONDS[at // 1000 % 60]

    # -- product views -------------------------------------------------------------------------------------
    def _product_view(
        self, at: int, product: Product | None = None, referrer: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        random_ = self._random
        devices = self._devices
        device_id, store_id, remote_ip = devices[int(random_() * len(devices))]
        if product is None:
            product = self._products[bisect_right(self._product_weights, random_() * self._weight_total)]
        if injection is None:
            referrer = REFERRERS[int(random_() * len(REFERRERS))]
        roll = random_()
        late = self._late_fraction
        if roll < late:
            produce = at + self._jitter_ms + int(roll / late * self._late_span)
        else:
            produce = at + int((roll - late) / self._on_time_share * self._jitter_span)
        cached = self._local_times.get(store_id)
        if cached is not None and cached[0] == at // 60_000:
            local_time = cached[1] + SECONDS[at // 1000 % 60]
        else:
            local_time = self._local_time(store_id, at)
        product_id = product.product_id
        value = {
            "metadata": {
                "event_id": self._id_prefix + hex(next(self._id_counter))[-10:],
                "event_time": at,
                "ingest_time": produce,
                "producer": self._producer,
                "trace_context": None,
            },
            "product_id": product_id,
            "device_id": device_id,
            "store_id": store_id,
            "referrer_url": referrer,
            "local_time": local_time,
            "remote_ip": remote_ip if random_() > 0.02 else None,
        }
        return Emitted(PRODUCT_VIEWS, product_id, value, at, produce, injection)

    # -- clickstream ---------------------------------------------------------------------------------------
    def _session(self, at: int) -> _Session:
        random_ = self._random
        sessions = self._sessions
        if sessions and random_() < 0.85:
            session = sessions[int(random_() * len(sessions))]
            if at - session.started_ms < 3_600_000:
                return session
        customers = self.world.customers
        customer = customers[int(random_() * len(customers))] if random_() < 0.7 else None
        devices = self.world.devices
        device = devices[int(random_() * len(devices))]
        if customer is not None:
            country, city = customer.country, customer.city.name
            session = _Session(self._uuid(), customer.customer_id, country, city, device.device_type, at, {})
        else:
            session = _Session(self._uuid(), None, device.store_id, None, device.device_type, at, {})
        session.geo_location = {"country": session.country, "city": session.city}
        if len(sessions) < 300:
            sessions.append(session)
        else:
            sessions[int(random_() * len(sessions))] = session
        return session

    def _click(
        self, at: int, event_type: str | None = None, service: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        random_ = self._random
        session = self._session(at)
        if event_type is None:
            event_type = CLICK_TYPES[bisect_right(CLICK_WEIGHTS, random_())]
            if event_type in ("ORDER_COMPLETE", "ORDER_FAILED") and not self._recent_orders:
                event_type = "SEARCH"
        product_id: str | None = None
        details: tuple[str, dict[str, Any]]
        level = "INFO"
        if event_type == "SEARCH":
            service = "search"
            product_id = self._popular_product().product_id
            details = (
                "com.freightline.web.SearchDetails",
                {
                    "query": SEARCH_TERMS[int(random_() * len(SEARCH_TERMS))],
                    "result_count": int(random_() * 400),
                },
            )
        elif event_type == "PURCHASE":
            service = "checkout"
            product = self._popular_product()
            product_id = product.product_id
            store = self._stores[session.country]
            recent = self._recent_orders
            details = (
                "com.freightline.web.PurchaseDetails",
                {
                    "order_id": recent[-1] if recent and random_() < 0.8 else None,
                    "amount": self._local_price(product, store) * self._randint(1, 3),
                    "currency": store.currency,
                    "payment_method": PAYMENT_METHODS[int(random_() * len(PAYMENT_METHODS))],
                },
            )
        elif event_type in ("ORDER_COMPLETE", "ORDER_FAILED"):
            service = "orders"
            failed = event_type == "ORDER_FAILED"
            level = "WARNING" if failed else "INFO"
            recent = self._recent_orders
            details = (
                "com.freightline.web.OrderOutcomeDetails",
                {
                    "order_id": recent[int(random_() * len(recent))],
                    "failure_reason": FAILURE_REASONS[int(random_() * len(FAILURE_REASONS))] if failed else None,
                },
            )
        else:
            service = service or SHOP_SERVICES[int(random_() * len(SHOP_SERVICES))]
            level = "ERROR"
            code, message = ERROR_CODES[int(random_() * len(ERROR_CODES))]
            details = ("com.freightline.web.ErrorDetails", {"error_code": code, "error_message": message})
        roll = random_()
        late = self._late_fraction
        if roll < late:
            produce = at + self._jitter_ms + int(roll / late * self._late_span)
        else:
            produce = at + int((roll - late) / self._on_time_share * self._jitter_span)
        session_id = session.session_id
        value = {
            "metadata": {
                "event_id": self._id_prefix + hex(next(self._id_counter))[-10:],
                "event_time": at,
                "ingest_time": produce,
                "producer": self._producer,
                "trace_context": None,
            },
            "event_type": event_type,
            "level": level,
            "service": service,
            "user_id": session.user_id,
            "session_id": session_id,
            "product_id": product_id,
            "session_duration_seconds": max(0, (at - session.started_ms) // 1000),
            "device_type": session.device_type,
            "geo_location": session.geo_location,
            "details": details,
        }
        return Emitted(CLICKSTREAM, session_id, value, at, produce, injection)

    # -- orders and shipments ------------------------------------------------------------------------------
    def _order(
        self,
        at: int,
        customer: Customer | None = None,
        warehouse: Warehouse | None = None,
        delay_days: int | None = None,
        injection: Injection | None = None,
    ) -> None:
        random_ = self._random
        world = self.world
        if customer is None:
            customer = world.customers[int(random_() * len(world.customers))]
        store = self._stores[customer.country]
        order_id = self._next_id("O")
        self._recent_orders.append(order_id)
        lines: list[dict[str, Any]] = []
        products: list[Product] = []
        total = ZERO
        for line_number in range(1, self._randint(1, 4) + 1):
            product = self._popular_product()
            products.append(product)
            quantity = self._randint(1, 5)
            price = self._local_price(product, store)
            amount = price * quantity
            total += amount
            lines.append(
                {
                    "line_number": line_number,
                    "product_id": product.product_id,
                    "quantity": quantity,
                    "price": price,
                    "sales_amount": amount,
                }
            )
        order_day = at // DAY_MS
        roll = random_() * 10  # shipment types weighted 6/3/1
        ship_type, transit_days, priority = SHIPMENT_TYPES[0 if roll < 6 else 1 if roll < 9 else 2]
        ship_day = order_day + self._randint(0, 2)
        due_day = ship_day + transit_days
        step = self.config.step_ms
        placed = {
            "order_id": order_id,
            "customer_id": customer.customer_id,
            "store_id": store.store_id,
            "status": "PLACED",
            "order_date": order_day,
            "ship_date": None,
            "due_date": due_day,
            "currency": store.currency,
            "line_items": lines,
            "order_total": total,
        }
        self._make(ORDERS, order_id, placed, at)
        ship_at = at + step
        self._make(ORDERS, order_id, {**placed, "status": "SHIPPED", "ship_date": ship_day}, ship_at)
        delivered_at = self._shipment(
            ship_at,
            order_id,
            customer,
            store,
            products,
            ship_type,
            transit_days,
            priority,
            due_day,
            warehouse,
            delay_days,
            injection,
        )
        self._make(ORDERS, order_id, {**placed, "status": "DELIVERED", "ship_date": ship_day}, delivered_at + step)

    def _shipment(
        self,
        at: int,
        order_id: str,
        customer: Customer,
        store: StoreSpec,
        products: list[Product],
        ship_type: str,
        transit_days: int,
        priority: str,
        due_day: int,
        warehouse: Warehouse | None,
        delay_days: int | None,
        injection: Injection | None,
    ) -> int:
        """Plan a shipment's status events from ``at``; returns the delivery event time."""
        random_ = self._random
        world = self.world
        if warehouse is None:
            local = self._local_warehouses[customer.country]
            if local and random_() < 0.8:
                warehouse = local[0]
            else:
                warehouse = world.warehouses[int(random_() * len(world.warehouses))]
        if delay_days is None and random_() < self.config.normal_delay_share:
            delay_days = self._randint(1, 3)
        delayed = bool(delay_days)
        shipment_id = self._next_id("SH")
        cross_border = warehouse.country != customer.country
        distance = round(400 + 2100 * random_() if cross_border else 30 + 670 * random_(), 1)
        mode = "AIR" if ship_type == "OVERNIGHT" or (cross_border and customer.country == "US") else "TRUCK"
        # Amounts in cents: Decimal(cents).scaleb(-2) is exact with two places, like quantize(CENT).
        revenue = Decimal(round((6 + 54 * random_()) * (160 if ship_type != "STANDARD" else 100))).scaleb(-2)
        cost = (revenue * Decimal(round(55 + 35 * random_())).scaleb(-2)).quantize(CENT)
        fx = store.fx_per_eur
        revenue, cost = (revenue * fx).quantize(CENT), (cost * fx).quantize(CENT)
        w_city, c_city = warehouse.city, customer.city
        route_id = f"{warehouse.country}-{w_city.code}>{customer.country}-{c_city.code}"
        legs = transit_days + (delay_days or 0)
        weight = 0.0
        sensitive = False
        for product in products:
            weight += product.weight_kg
            sensitive = sensitive or product.temperature_sensitive
        base = {
            "shipment_id": shipment_id,
            "order_id": order_id,
            "shipment_type": ship_type,
            "priority_level": priority,
            "weight_kg": round(weight, 2),
            "dimensions": {
                "length_cm": float(10 + int(random_() * 110)),
                "width_cm": float(10 + int(random_() * 70)),
                "height_cm": float(5 + int(random_() * 55)),
            },
            "customer_id": customer.customer_id,
            "origin": {
                "street": None,
                "postal_code": w_city.postal_code,
                "city": w_city.name,
                "country": warehouse.country,
            },
            "destination": {
                "street": None,
                "postal_code": c_city.postal_code,
                "city": c_city.name,
                "country": customer.country,
            },
            "route_id": route_id,
            "estimated_delivery_date": due_day,
            "transport_mode": mode,
            "currency": store.currency,
            "shipment_cost": cost,
            "revenue_generated": revenue,
            "warehouse_id": warehouse.warehouse_id,
            "temperature_sensitive": sensitive,
        }
        agent = f"A-{1 + int(random_() * 499):04d}"
        vehicle = f"V-{'PLN' if mode == 'AIR' else 'TRK'}-{1 + int(random_() * 299):04d}"
        step = self.config.step_ms
        hubs = len(TRANSIT_HUBS)
        span = max(legs, 1)
        penalty = (revenue * PENALTY_RATE * delay_days).quantize(CENT) if delayed and delay_days else ZERO
        # sequence_number n: PENDING (leg 0), legs 1 .. legs-1 IN_TRANSIT/DELAYED, then DELIVERED (leg legs).
        self._make(
            SHIPMENTS,
            shipment_id,
            {
                **base,
                "sequence_number": 1,
                "status": "PENDING",
                "current_location": None,
                "actual_delivery_date": None,
                "distance_traveled_km": 0.0,
                "delivery_penalty": ZERO,
                "delay_reason": None,
                "delivery_agent_id": None,
                "vehicle_id": None,
            },
            at,
            injection,
        )
        when = at
        for leg in range(1, legs):
            when += step
            hub_country, hub_city = TRANSIT_HUBS[(leg + leg + 1) % hubs]
            held = delayed and leg == transit_days
            self._make(
                SHIPMENTS,
                shipment_id,
                {
                    **base,
                    "sequence_number": leg + 1,
                    "status": "DELAYED" if held else "IN_TRANSIT",
                    "current_location": {"country": hub_country, "city": hub_city},
                    "actual_delivery_date": None,
                    "distance_traveled_km": round(distance * min(leg, legs) / span, 1),
                    "delivery_penalty": penalty if held else ZERO,
                    "delay_reason": DELAY_REASONS[int(random_() * len(DELAY_REASONS))] if held else None,
                    "delivery_agent_id": agent,
                    "vehicle_id": vehicle,
                },
                when,
                injection,
            )
        when += step
        actual = due_day + (delay_days or 0) if delayed else due_day - (1 if random_() < 0.2 else 0)
        self._make(
            SHIPMENTS,
            shipment_id,
            {
                **base,
                "sequence_number": max(legs, 1) + 1,
                "status": "DELIVERED",
                "current_location": {"country": customer.country, "city": c_city.name},
                "actual_delivery_date": actual,
                "distance_traveled_km": round(distance * legs / span, 1),
                "delivery_penalty": penalty,
                "delay_reason": None,
                "delivery_agent_id": agent,
                "vehicle_id": vehicle,
            },
            when,
            injection,
        )
        return when

    # -- supplier invoices and payments --------------------------------------------------------------------
    def _invoice(self, at: int, fraud_factor: Decimal | None = None, injection: Injection | None = None) -> str:
        rng = self.rng
        random_ = self._random
        world = self.world
        supplier = world.suppliers[int(random_() * len(world.suppliers))]
        invoice_id = self._next_id("INV")
        amount = Decimal(round((150 + 24_850 * random_()) * 100)).scaleb(-2)
        issue_day = at // DAY_MS
        due_day = issue_day + supplier.payment_terms_days
        warehouse = world.warehouses[int(random_() * len(world.warehouses))] if random_() < 0.8 else None
        invoice = {
            "invoice_id": invoice_id,
            "supplier_id": supplier.supplier_id,
            "purchase_order_id": self._next_id("PO") if random_() < 0.9 else None,
            "warehouse_id": warehouse.warehouse_id if warehouse else None,
            "status": "ISSUED",
            "issue_date": issue_day,
            "due_date": due_day,
            "amount": amount,
            "currency": supplier.currency,
        }
        self._make(INVOICES, invoice_id, invoice, at, injection)  # a fraud's invoice belongs to it
        delay_days = round(rng.gauss(1.5, 4))
        paid = amount
        if fraud_factor is not None:
            paid = (amount * fraud_factor).quantize(WHOLE).quantize(CENT)
        payment = {
            "payment_id": self._next_id("PAY"),
            "invoice_id": invoice_id,
            "supplier_id": supplier.supplier_id,
            "amount": paid,
            "currency": supplier.currency,
            "payment_method": "BANK_TRANSFER" if random_() < 0.9 else "CARD",
            "due_date": due_day,
            "paid_date": due_day + delay_days,
            "payment_delay_days": delay_days,
        }
        pay_at = at + self.config.step_ms * self._randint(1, 3)
        self._make(PAYMENTS, invoice_id, payment, pay_at, injection)
        return invoice_id

    # -- reference updates ---------------------------------------------------------------------------------
    def _price_change(self, at: int) -> None:
        rng = self.rng
        product = rng.choice(self.world.products)
        factor = Decimal(str(round(1 + rng.uniform(-0.15, 0.15), 3)))
        product.price_eur = max(MIN_PRICE, (product.price_eur * factor).quantize(CENT))
        product.stock_quantity = max(0, product.stock_quantity + rng.randint(-50, 200))
        metadata = self._metadata(at, at)
        self._emit(Emitted(REF_PRODUCTS, product.product_id, product_record(product, metadata), at, at))

    # -- anomaly injection ---------------------------------------------------------------------------------
    def _inject(self, at: int) -> None:
        rng = self.rng
        kind = rng.choice(self.config.anomaly_kinds)
        label_id = self._uuid()
        if kind is AnomalyKind.TRAFFIC_SPIKE:
            product = rng.choice(self.world.products[len(self.world.products) // 2 :] or self.world.products)
            referrer = f"https://promo-{rng.randrange(1000, 9999)}.example.com/deal"
            count, window = rng.randint(150, 300), rng.randint(30_000, 60_000)
            injection = Injection(
                kind,
                label_id,
                "product",
                product.product_id,
                f"{count} views of {product.product_id} in {window // 1000}s from referrer {referrer}",
            )
            for _ in range(count):
                self._emit(self._product_view(at + rng.randrange(window), product, referrer, injection))
        elif kind is AnomalyKind.ERROR_BURST:
            service = rng.choice(SHOP_SERVICES)
            count, window = rng.randint(80, 160), rng.randint(30_000, 60_000)
            injection = Injection(
                kind, label_id, "service", service, f"{count} ERROR events from service {service} in {window // 1000}s"
            )
            for _ in range(count):
                self._emit(self._click(at + rng.randrange(window), "ERROR", service, injection))
        elif kind is AnomalyKind.SHIPMENT_DELAY:
            anchor = rng.choice(self.world.customers)
            customers = [c for c in self.world.customers if c.city == anchor.city] or [anchor]
            warehouse = rng.choice(self.world.warehouses)
            route_id = f"{warehouse.country}-{warehouse.city.code}>{anchor.country}-{anchor.city.code}"
            count = rng.randint(6, 12)
            injection = Injection(
                kind, label_id, "route", route_id, f"{count} shipments on route {route_id} delivered 3-6 days late"
            )
            for index in range(count):
                customer = rng.choice(customers)
                self._order(at + index * 2_000, customer, warehouse, rng.randint(3, 6), injection)
        else:
            factor = Decimal(str(round(rng.uniform(5, 20), 1)))
            injection = Injection(kind, label_id, "invoice", "", f"payment of {factor}x the invoiced amount")
            injection.entity_key = self._invoice(at, factor, injection)
        self._pending.append(injection)
        self._push(injection.last_produce_ms + 1, injection)  # the label leaves after the last of its events
