"""The event engine: a seeded, simulated clock that emits every event family of the platform.

The engine is pure (no broker, no wall clock): it owns a ``random.Random`` seeded once, a world
(:mod:`services.generator.world`) and a heap of pending items ordered by *produce time*. Each family has a
tick whose inter-arrival times are exponential at the family's rate (times the burst factor inside burst
windows). An event's *event time* is when it happened; its *produce time* is when it is handed to Kafka:
``produce = event + delay`` where the delay is a small jitter for most events and up to ``max_lateness_ms``
for the configured share of late events. Emission follows produce time, so late events arrive out of order
in event time, with a hard bound on the lateness.

Multi-step entities (orders, shipments, invoices and their payments) are planned when they start: all their
future events are built at once and scheduled, ``step_ms`` apart in event time, with ``step_ms`` larger than
the maximum lateness so that the events of one key always leave in order. Business dates (order, ship, due,
delivery and payment dates) follow a compressed calendar: one step of a shipment is one day of transit.

The same configuration and seed give the same sequence of events, ids included.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
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


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that shapes the generated stream (pure values; the settings class builds it)."""

    seed: int = 42
    start_time_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
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
    anomalies_per_minute: float = 0.5
    anomaly_kinds: tuple[AnomalyKind, ...] = tuple(AnomalyKind)
    normal_delay_share: float = 0.06
    producer: str = "generator"
    sizes: WorldSizes = field(default_factory=WorldSizes)

    def __post_init__(self) -> None:
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


_TICK, _EVENT, _LABEL = 0, 1, 2
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


@dataclass
class _Session:
    session_id: str
    user_id: str | None
    country: str
    city: str | None
    device_type: str
    started_ms: int


class Engine:
    """Produces the stream: ``reference_snapshot()`` first, then ``next()`` forever, ``finish()`` at the end."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.world: World = build_world(self.rng, config.sizes)
        self.now_ms = config.start_time_ms
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._counters: dict[str, int] = {}
        self._zones = {store.store_id: ZoneInfo(store.spec.timezone) for store in self.world.stores}
        self._local_times: dict[str, tuple[int, str]] = {}
        self._sessions: list[_Session] = []
        self._recent_orders: deque[str] = deque(maxlen=200)
        self._pending: list[Injection] = []
        self.anomalies_injected: dict[str, int] = {}
        self._burst_start, self._burst_end = self._next_burst(config.start_time_ms)
        for family in RATED_FAMILIES:
            rate = config.rates.get(family, 0.0)
            if rate > 0:
                self._schedule_tick(family, config.start_time_ms)
        if config.anomalies_per_minute > 0 and config.anomaly_kinds:
            self._schedule_tick("anomalies", config.start_time_ms)

    # -- ids and envelopes ---------------------------------------------------------------------------------
    def _uuid(self) -> str:
        """A random (version 4, RFC 4122 variant) UUID drawn from the seeded generator."""
        h = f"{(self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _next_id(self, prefix: str, width: int = 9) -> str:
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        return f"{prefix}-{count:0{width}d}"

    def _delay(self) -> int:
        config = self.config
        roll = self.rng.random()
        if roll < config.late_fraction:
            return config.jitter_ms + int(self.rng.random() * (config.max_lateness_ms - config.jitter_ms + 1))
        return int(self.rng.random() * (config.jitter_ms + 1))

    def _metadata(self, event_time_ms: int, produce_time_ms: int) -> dict[str, Any]:
        return {
            "event_id": self._uuid(),
            "event_time": event_time_ms,
            "ingest_time": produce_time_ms,
            "producer": self.config.producer,
            "trace_context": None,
        }

    def _make(
        self,
        topic: str,
        key: str,
        body: dict[str, Any],
        event_time_ms: int,
        injection: Injection | None = None,
        delay: int | None = None,
    ) -> Emitted:
        produce = event_time_ms + (self._delay() if delay is None else delay)
        metadata = self._metadata(event_time_ms, produce)
        value = {"metadata": metadata, **body}
        if injection is not None:
            injection.add(metadata["event_id"], event_time_ms)
        return Emitted(topic, key, value, event_time_ms, produce, injection)

    # -- scheduling ----------------------------------------------------------------------------------------
    def _push(self, at_ms: int, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, kind, payload))

    def _emit_later(self, item: Emitted) -> None:
        self._push(item.produce_time_ms, _EVENT, item)

    def _next_burst(self, after_ms: int) -> tuple[int, int]:
        config = self.config
        if config.burst_interval_s <= 0 or config.burst_duration_s <= 0 or config.burst_factor <= 1:
            return (1 << 62, 1 << 62)
        start = after_ms + int(self.rng.expovariate(1.0 / config.burst_interval_s) * 1000)
        return start, start + int(config.burst_duration_s * 1000)

    def in_burst(self, at_ms: int) -> bool:
        return self._burst_start <= at_ms < self._burst_end

    def _schedule_tick(self, family: str, now_ms: int) -> None:
        while now_ms >= self._burst_end:
            self._burst_start, self._burst_end = self._next_burst(self._burst_end)
        if family == "anomalies":
            rate = self.config.anomalies_per_minute / 60.0
        else:
            rate = self.config.rates[family]
            if self.in_burst(now_ms):
                rate *= self.config.burst_factor
        gap = max(1, int(self.rng.expovariate(rate) * 1000))
        self._push(now_ms + gap, _TICK, family)

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
        while True:
            at, _, kind, payload = heapq.heappop(self._heap)
            self.now_ms = at
            if kind == _EVENT:
                item: Emitted = payload
                if item.injection is not None:
                    item.injection.emitted(item.event_id, item.event_time_ms)
                return item
            if kind == _LABEL:
                return self._label(payload, at, emitted_only=False)
            family: str = payload
            self._schedule_tick(family, at)
            self._tick(family, at)

    def finish(self) -> list[Emitted]:
        """Labels for injections cut short by the end of the run (only the events actually emitted)."""
        labels = []
        for injection in self._pending:
            if not injection.labelled and injection.emitted_ids:
                labels.append(self._label(injection, self.now_ms, emitted_only=True))
        self._pending = [i for i in self._pending if not i.labelled]
        return labels

    def _label(self, injection: Injection, at: int, *, emitted_only: bool) -> Emitted:
        injection.labelled = True
        self.anomalies_injected[injection.kind.value] = self.anomalies_injected.get(injection.kind.value, 0) + 1
        metadata = self._metadata(at, at)
        record = label_record(injection, metadata, emitted_only=emitted_only)
        return Emitted(ANOMALY_LABELS, injection.entity_key, record, at, at)

    def _tick(self, family: str, at: int) -> None:
        if family == "product_views":
            self._emit_later(self._product_view(at))
        elif family == "clickstream":
            self._emit_later(self._click(at))
        elif family == "orders":
            self._order(at)
        elif family == "supplier_invoices":
            self._invoice(at)
        elif family == "reference_updates":
            self._price_change(at)
        elif family == "anomalies":
            self._inject(at)

    # -- product views -------------------------------------------------------------------------------------
    def _popular_product(self) -> Product:
        weights = self.world.product_weights
        return self.world.products[bisect.bisect(weights, self.rng.random() * weights[-1])]

    def _local_time(self, store_id: str, at: int) -> str:
        """Wall-clock time of ``at`` in the store's zone, ISO 8601 without offset (cached per second)."""
        second = at // 1000
        cached = self._local_times.get(store_id)
        if cached is not None and cached[0] == second:
            return cached[1]
        text = dt.datetime.fromtimestamp(second, self._zones[store_id]).strftime("%Y-%m-%dT%H:%M:%S")
        self._local_times[store_id] = (second, text)
        return text

    def _product_view(
        self, at: int, product: Product | None = None, referrer: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        rng = self.rng
        devices = self.world.devices
        device = devices[int(rng.random() * len(devices))]
        product = product or self._popular_product()
        if injection is None:
            referrer = REFERRERS[int(rng.random() * len(REFERRERS))]
        body = {
            "product_id": product.product_id,
            "device_id": device.device_id,
            "store_id": device.store_id,
            "referrer_url": referrer,
            "local_time": self._local_time(device.store_id, at),
            "remote_ip": device.remote_ip if rng.random() > 0.02 else None,
        }
        return self._make(PRODUCT_VIEWS, product.product_id, body, at, injection)

    # -- clickstream ---------------------------------------------------------------------------------------
    def _session(self, at: int) -> _Session:
        rng = self.rng
        if self._sessions and rng.random() < 0.85:
            session = self._sessions[rng.randrange(len(self._sessions))]
            if at - session.started_ms < 3_600_000:
                return session
        customer = rng.choice(self.world.customers) if rng.random() < 0.7 else None
        device = rng.choice(self.world.devices)
        country = customer.country if customer else device.store_id
        city = customer.city.name if customer else None
        user_id = customer.customer_id if customer else None
        session = _Session(self._uuid(), user_id, country, city, device.device_type, at)
        if len(self._sessions) < 300:
            self._sessions.append(session)
        else:
            self._sessions[rng.randrange(len(self._sessions))] = session
        return session

    def _click(
        self, at: int, event_type: str | None = None, service: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        rng = self.rng
        session = self._session(at)
        if event_type is None:
            roll = rng.random()
            event_type = next(t for t, w in zip(CLICK_TYPES, CLICK_WEIGHTS, strict=True) if roll < w)
            if event_type in ("ORDER_COMPLETE", "ORDER_FAILED") and not self._recent_orders:
                event_type = "SEARCH"
        product = self._popular_product()
        details: tuple[str, dict[str, Any]] | None
        level = "INFO"
        if event_type == "SEARCH":
            service = "search"
            details = (
                "com.freightline.web.SearchDetails",
                {"query": rng.choice(SEARCH_TERMS), "result_count": rng.randrange(0, 400)},
            )
        elif event_type == "PURCHASE":
            service = "checkout"
            store = self.world.store(session.country)
            amount = (local_price(product, store) * rng.randint(1, 3)).quantize(CENT)
            details = (
                "com.freightline.web.PurchaseDetails",
                {
                    "order_id": self._recent_orders[-1] if self._recent_orders and rng.random() < 0.8 else None,
                    "amount": amount,
                    "currency": store.currency,
                    "payment_method": rng.choice(PAYMENT_METHODS),
                },
            )
        elif event_type in ("ORDER_COMPLETE", "ORDER_FAILED"):
            service = "orders"
            failed = event_type == "ORDER_FAILED"
            level = "WARNING" if failed else "INFO"
            details = (
                "com.freightline.web.OrderOutcomeDetails",
                {
                    "order_id": rng.choice(self._recent_orders),
                    "failure_reason": rng.choice(FAILURE_REASONS) if failed else None,
                },
            )
        else:
            service = service or rng.choice(SHOP_SERVICES)
            level = "ERROR"
            code, message = rng.choice(ERROR_CODES)
            details = ("com.freightline.web.ErrorDetails", {"error_code": code, "error_message": message})
        body = {
            "event_type": event_type,
            "level": level,
            "service": service,
            "user_id": session.user_id,
            "session_id": session.session_id,
            "product_id": product.product_id if event_type in ("SEARCH", "PURCHASE") else None,
            "session_duration_seconds": max(0, (at - session.started_ms) // 1000),
            "device_type": session.device_type,
            "geo_location": {"country": session.country, "city": session.city},
            "details": details,
        }
        return self._make(CLICKSTREAM, session.session_id, body, at, injection)

    # -- orders and shipments ------------------------------------------------------------------------------
    def _order(
        self,
        at: int,
        customer: Customer | None = None,
        warehouse: Warehouse | None = None,
        delay_days: int | None = None,
        injection: Injection | None = None,
    ) -> None:
        rng = self.rng
        world = self.world
        customer = customer or rng.choice(world.customers)
        store = world.store(customer.country)
        order_id = self._next_id("O")
        self._recent_orders.append(order_id)
        lines: list[dict[str, Any]] = []
        products: list[Product] = []
        for line_number in range(1, rng.randint(1, 4) + 1):
            product = self._popular_product()
            products.append(product)
            quantity = rng.randint(1, 5)
            price = local_price(product, store)
            lines.append(
                {
                    "line_number": line_number,
                    "product_id": product.product_id,
                    "quantity": quantity,
                    "price": price,
                    "sales_amount": price * quantity,
                }
            )
        total: Decimal = sum((line["sales_amount"] for line in lines), Decimal("0.00"))
        order_day = at // DAY_MS
        ship_type, transit_days, priority = rng.choices(SHIPMENT_TYPES, weights=(6, 3, 1), k=1)[0]
        ship_day = order_day + rng.randint(0, 2)
        due_day = ship_day + transit_days
        base = {
            "order_id": order_id,
            "customer_id": customer.customer_id,
            "store_id": store.store_id,
            "order_date": order_day,
            "due_date": due_day,
            "currency": store.currency,
            "line_items": lines,
            "order_total": total,
        }
        step = self.config.step_ms
        self._emit_later(self._make(ORDERS, order_id, {**base, "status": "PLACED", "ship_date": None}, at))
        ship_at = at + step
        self._emit_later(self._make(ORDERS, order_id, {**base, "status": "SHIPPED", "ship_date": ship_day}, ship_at))
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
        body = {**base, "status": "DELIVERED", "ship_date": ship_day}
        self._emit_later(self._make(ORDERS, order_id, body, delivered_at + step))

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
        rng = self.rng
        world = self.world
        if warehouse is None:
            local = [w for w in world.warehouses if w.country == customer.country]
            warehouse = local[0] if local and rng.random() < 0.8 else rng.choice(world.warehouses)
        if delay_days is None and rng.random() < self.config.normal_delay_share:
            delay_days = rng.randint(1, 3)
        delayed = bool(delay_days)
        shipment_id = self._next_id("SH")
        cross_border = warehouse.country != customer.country
        distance = round(rng.uniform(400, 2500) if cross_border else rng.uniform(30, 700), 1)
        mode = "AIR" if ship_type == "OVERNIGHT" or (cross_border and customer.country == "US") else "TRUCK"
        revenue = Decimal(str(round(rng.uniform(6, 60) * (1 + 0.6 * (ship_type != "STANDARD")), 2))).quantize(CENT)
        cost = (revenue * Decimal(str(round(rng.uniform(0.55, 0.9), 2)))).quantize(CENT)
        fx = store.fx_per_eur
        revenue, cost = (revenue * fx).quantize(CENT), (cost * fx).quantize(CENT)
        route_id = f"{warehouse.country}-{warehouse.city.code}>{customer.country}-{customer.city.code}"
        legs = transit_days + (delay_days or 0)
        base = {
            "shipment_id": shipment_id,
            "order_id": order_id,
            "shipment_type": ship_type,
            "priority_level": priority,
            "weight_kg": round(sum(p.weight_kg for p in products), 2),
            "dimensions": {
                "length_cm": float(rng.randrange(10, 120)),
                "width_cm": float(rng.randrange(10, 80)),
                "height_cm": float(rng.randrange(5, 60)),
            },
            "customer_id": customer.customer_id,
            "origin": {
                "street": None,
                "postal_code": warehouse.city.postal_code,
                "city": warehouse.city.name,
                "country": warehouse.country,
            },
            "destination": {
                "street": None,
                "postal_code": customer.city.postal_code,
                "city": customer.city.name,
                "country": customer.country,
            },
            "route_id": route_id,
            "estimated_delivery_date": due_day,
            "transport_mode": mode,
            "currency": store.currency,
            "shipment_cost": cost,
            "revenue_generated": revenue,
            "warehouse_id": warehouse.warehouse_id,
            "temperature_sensitive": any(p.temperature_sensitive for p in products),
        }
        agent = f"A-{rng.randrange(1, 500):04d}"
        vehicle = f"V-{'PLN' if mode == 'AIR' else 'TRK'}-{rng.randrange(1, 300):04d}"
        step = self.config.step_ms
        zero = Decimal("0.00")
        sequence = 0

        def status_event(status: str, when: int, leg: int, **extra: Any) -> None:
            nonlocal sequence
            sequence += 1
            hub_country, hub_city = TRANSIT_HUBS[(leg + sequence) % len(TRANSIT_HUBS)]
            location = None
            if status == "DELIVERED":
                location = {"country": customer.country, "city": customer.city.name}
            elif status != "PENDING":
                location = {"country": hub_country, "city": hub_city}
            body = {
                **base,
                "sequence_number": sequence,
                "status": status,
                "current_location": location,
                "actual_delivery_date": None,
                "distance_traveled_km": round(distance * min(leg, legs) / max(legs, 1), 1),
                "delivery_penalty": zero,
                "delay_reason": None,
                "delivery_agent_id": agent if status != "PENDING" else None,
                "vehicle_id": vehicle if status != "PENDING" else None,
                **extra,
            }
            self._emit_later(self._make(SHIPMENTS, shipment_id, body, when, injection))

        status_event("PENDING", at, 0)
        when = at
        for leg in range(1, legs):
            when += step
            if delayed and leg == transit_days:
                penalty = (revenue * Decimal("0.05") * (delay_days or 0)).quantize(CENT)
                reason = rng.choice(DELAY_REASONS)
                status_event("DELAYED", when, leg, delivery_penalty=penalty, delay_reason=reason)
            else:
                status_event("IN_TRANSIT", when, leg)
        when += step
        actual = due_day + (delay_days or 0) if delayed else due_day - (1 if rng.random() < 0.2 else 0)
        penalty = (revenue * Decimal("0.05") * (delay_days or 0)).quantize(CENT) if delayed else zero
        status_event("DELIVERED", when, legs, actual_delivery_date=actual, delivery_penalty=penalty)
        return when

    # -- supplier invoices and payments --------------------------------------------------------------------
    def _invoice(self, at: int, fraud_factor: Decimal | None = None, injection: Injection | None = None) -> str:
        rng = self.rng
        world = self.world
        supplier = rng.choice(world.suppliers)
        invoice_id = self._next_id("INV")
        amount = Decimal(str(round(rng.uniform(150, 25_000), 2))).quantize(CENT)
        issue_day = at // DAY_MS
        due_day = issue_day + supplier.payment_terms_days
        warehouse = rng.choice(world.warehouses) if rng.random() < 0.8 else None
        invoice = {
            "invoice_id": invoice_id,
            "supplier_id": supplier.supplier_id,
            "purchase_order_id": self._next_id("PO") if rng.random() < 0.9 else None,
            "warehouse_id": warehouse.warehouse_id if warehouse else None,
            "status": "ISSUED",
            "issue_date": issue_day,
            "due_date": due_day,
            "amount": amount,
            "currency": supplier.currency,
        }
        self._emit_later(self._make(INVOICES, invoice_id, invoice, at))
        delay_days = round(rng.gauss(1.5, 4))
        paid = amount
        if fraud_factor is not None:
            paid = (amount * fraud_factor).quantize(Decimal("1")).quantize(CENT)
        payment = {
            "payment_id": self._next_id("PAY"),
            "invoice_id": invoice_id,
            "supplier_id": supplier.supplier_id,
            "amount": paid,
            "currency": supplier.currency,
            "payment_method": "BANK_TRANSFER" if rng.random() < 0.9 else "CARD",
            "due_date": due_day,
            "paid_date": due_day + delay_days,
            "payment_delay_days": delay_days,
        }
        pay_at = at + self.config.step_ms * rng.randint(1, 3)
        self._emit_later(self._make(PAYMENTS, invoice_id, payment, pay_at, injection))
        return invoice_id

    # -- reference updates ---------------------------------------------------------------------------------
    def _price_change(self, at: int) -> None:
        rng = self.rng
        product = rng.choice(self.world.products)
        factor = Decimal(str(round(1 + rng.uniform(-0.15, 0.15), 3)))
        product.price_eur = max(Decimal("0.50"), (product.price_eur * factor).quantize(CENT))
        product.stock_quantity = max(0, product.stock_quantity + rng.randint(-50, 200))
        metadata = self._metadata(at, at)
        self._emit_later(Emitted(REF_PRODUCTS, product.product_id, product_record(product, metadata), at, at))

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
                self._emit_later(self._product_view(at + rng.randrange(window), product, referrer, injection))
        elif kind is AnomalyKind.ERROR_BURST:
            service = rng.choice(SHOP_SERVICES)
            count, window = rng.randint(80, 160), rng.randint(30_000, 60_000)
            injection = Injection(
                kind, label_id, "service", service, f"{count} ERROR events from service {service} in {window // 1000}s"
            )
            for _ in range(count):
                self._emit_later(self._click(at + rng.randrange(window), "ERROR", service, injection))
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
        last_produce = max(
            item.produce_time_ms for _, _, k, item in self._heap if k == _EVENT and item.injection is injection
        )
        self._push(last_produce + 1, _LABEL, injection)
