"""The event families: how each family's records are built from the world (product views, clickstream,
orders with their shipments, supplier invoices with their payments, reference records and price changes).

Builders draw from the run's seeded generator in a fixed order (the order is part of the world: the same seed
gives the same records). A product view or clickstream event is returned to the caller, which schedules it;
multi-step entities (orders, shipments, invoices and their payments) are planned when they start: all their
future events are drawn at once (fields, ids, produce times) and scheduled, ``step_ms`` apart in event time, with
``step_ms`` larger than the maximum lateness so that the events of one key always leave in order; an order's and a
shipment's later records are kept as the entity's shared fields and the step's own until due (``Planned``).
Business dates (order, ship, due, delivery and payment dates) follow a compressed calendar: one step of a shipment
is one day of transit.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.generator.anomalies import Injection
from services.generator.config import GeneratorConfig
from services.generator.envelope import Envelopes, metadata
from services.generator.records import (
    CLICKSTREAM,
    INVOICES,
    ORDERS,
    PAYMENTS,
    PRODUCT_VIEWS,
    REF_CUSTOMERS,
    REF_PRODUCTS,
    REF_STORES,
    REF_SUPPLIERS,
    REF_WAREHOUSES,
    SHIPMENTS,
    Emitted,
    Planned,
)
from services.generator.world import (
    CENT,
    REFERRERS,
    Customer,
    Product,
    StoreSpec,
    Warehouse,
    World,
    customer_record,
    local_price,
    product_record,
    route_carriers,
    store_record,
    supplier_record,
    warehouse_record,
)

DAY_MS = 86_400_000
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
# A transit hub's location, one dict for every shipment event at it (records are read, never changed, once built).
HUB_LOCATIONS = tuple({"country": country, "city": city} for country, city in TRANSIT_HUBS)
# The fields of a shipment's step and of an order's later status (the rest is the entity's shared base).
SHIPMENT_STEP = (
    "sequence_number",
    "status",
    "current_location",
    "actual_delivery_date",
    "distance_traveled_km",
    "delivery_penalty",
    "delay_reason",
    "delivery_agent_id",
    "vehicle_id",
)
ORDER_STEP = ("status", "ship_date")
SECONDS = tuple(f"{second:02d}" for second in range(60))
ZERO = Decimal("0.00")
PENALTY_RATE = Decimal("0.05")
MIN_PRICE = Decimal("0.50")
WHOLE = Decimal("1")


def route_id(warehouse: Warehouse, country: str, city_code: str) -> str:
    """The route of a shipment: origin warehouse country and city, destination country and city."""
    return f"{warehouse.country}-{warehouse.city.code}>{country}-{city_code}"


@dataclass(slots=True)
class _Session:
    session_id: str
    user_id: str | None
    country: str
    city: str | None
    device_type: str
    started_ms: int
    geo_location: dict[str, str | None]


class Families:
    """Builds every family's records; ``push(at, record)`` schedules a record at its produce time."""

    def __init__(
        self,
        config: GeneratorConfig,
        rng: random.Random,
        world: World,
        envelopes: Envelopes,
        push: Callable[[int, Any], None],
    ) -> None:
        self.config = config
        self.rng = rng
        self.world = world
        self._random = rng.random
        self.envelopes = envelopes
        self._delay = envelopes.delay
        self._metadata = envelopes.metadata
        self._uuid = envelopes.uuid
        self._producer = config.producer
        self._push = push
        self._counters: dict[str, int] = {}
        self._zones = {store.store_id: ZoneInfo(store.spec.timezone) for store in world.stores}
        self._stores = {store.store_id: store.spec for store in world.stores}
        self._local_warehouses = {
            store.store_id: [w for w in world.warehouses if w.country == store.store_id] for store in world.stores
        }
        self._devices = [(d.device_id, d.store_id, d.remote_ip) for d in world.devices]
        self._products = world.products
        self._product_weights = world.product_weights
        self._weight_total = world.product_weights[-1]
        self._local_times: dict[str, tuple[int, str]] = {}
        self._local_prices: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._sessions: list[_Session] = []
        self._recent_orders: deque[str] = deque(maxlen=200)
        self._route_carriers: dict[str, tuple[str, ...]] = {}

    # -- ids and scheduling --------------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        """The next business id of a kind: ``O-000000001``, ``SH-000000001``, ..."""
        count = self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}-{count:09d}"

    def emit(self, item: Emitted) -> None:
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
        produce, event_id = self._stamp(event_time_ms, injection)
        value["metadata"] = metadata(event_id, event_time_ms, produce, self._producer)
        self._push(produce, Emitted(topic, key, value, event_time_ms, produce, injection))

    def _stamp(self, event_time_ms: int, injection: Injection | None) -> tuple[int, str]:
        """A scheduled record's produce time and event id (drawn in this order), counted for its injection."""
        produce = event_time_ms + self._delay()
        event_id = self._uuid()
        if injection is not None:
            injection.add(event_id, event_time_ms, produce)
        return produce, event_id

    def _plan(
        self,
        topic: str,
        key: str,
        base: dict[str, Any],
        names: tuple[str, ...],
        values: tuple[Any, ...],
        event_time_ms: int,
        injection: Injection | None = None,
    ) -> None:
        """Schedule a future record of an entity: ``base`` with the step's ``names`` set to ``values``, built when
        it is due (:class:`~services.generator.records.Planned`); the same draws, id and record as :meth:`_make`."""
        produce, event_id = self._stamp(event_time_ms, injection)
        self._push(
            produce,
            Planned(topic, key, base, names, values, event_time_ms, produce, event_id, self._producer, injection),
        )

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
    def product_view(
        self, at: int, product: Product | None = None, referrer: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        random_ = self._random
        devices = self._devices
        device_id, store_id, remote_ip = devices[int(random_() * len(devices))]
        if product is None:
            product = self._products[bisect_right(self._product_weights, random_() * self._weight_total)]
        if injection is None:
            referrer = REFERRERS[int(random_() * len(REFERRERS))]
        produce = at + self._delay()
        cached = self._local_times.get(store_id)
        if cached is not None and cached[0] == at // 60_000:
            local_time = cached[1] + SECONDS[at // 1000 % 60]
        else:
            local_time = self._local_time(store_id, at)
        product_id = product.product_id
        value = {
            "metadata": self._metadata(at, produce),
            "product_id": product_id,
            "device_id": device_id,
            "store_id": store_id,
            "referrer_url": referrer,
            "local_time": local_time,
            "remote_ip": remote_ip if random_() > 0.02 else None,
        }
        return Emitted(PRODUCT_VIEWS, product_id, value, at, produce, injection)

    # -- clickstream ---------------------------------------------------------------------------------------
    def session(self, at: int) -> _Session:
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
            session = _Session(self.envelopes.uuid(), customer.customer_id, country, city, device.device_type, at, {})
        else:
            session = _Session(self.envelopes.uuid(), None, device.store_id, None, device.device_type, at, {})
        session.geo_location = {"country": session.country, "city": session.city}
        if len(sessions) < 300:
            sessions.append(session)
        else:
            sessions[int(random_() * len(sessions))] = session
        return session

    def click(
        self, at: int, event_type: str | None = None, service: str | None = None, injection: Injection | None = None
    ) -> Emitted:
        random_ = self._random
        session = self.session(at)
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
        produce = at + self._delay()
        session_id = session.session_id
        value = {
            "metadata": self._metadata(at, produce),
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
    def order(
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
        # the placed record is a copy: the later statuses share ``placed`` and need none of its envelope
        self._make(ORDERS, order_id, {**placed}, at)
        ship_at = at + step
        self._plan(ORDERS, order_id, placed, ORDER_STEP, ("SHIPPED", ship_day), ship_at)
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
        self._plan(ORDERS, order_id, placed, ORDER_STEP, ("DELIVERED", ship_day), delivered_at + step)

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
        route = route_id(warehouse, customer.country, c_city.code)
        carriers = self._route_carriers.get(route)
        if carriers is None:
            carriers = self._route_carriers[route] = route_carriers(self.config.seed, route)
        # one of the route's carriers per shipment, picked by the shipment id (no draw from the run's generator)
        carrier = carriers[zlib.crc32(shipment_id.encode()) % len(carriers)]
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
            "route_id": route,
            "carrier": carrier,
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
        self._plan(
            SHIPMENTS,
            shipment_id,
            base,
            SHIPMENT_STEP,
            (1, "PENDING", None, None, 0.0, ZERO, None, None, None),
            at,
            injection,
        )
        when = at
        for leg in range(1, legs):
            when += step
            held = delayed and leg == transit_days
            self._plan(
                SHIPMENTS,
                shipment_id,
                base,
                SHIPMENT_STEP,
                (
                    leg + 1,
                    "DELAYED" if held else "IN_TRANSIT",
                    HUB_LOCATIONS[(leg + leg + 1) % hubs],
                    None,
                    round(distance * min(leg, legs) / span, 1),
                    penalty if held else ZERO,
                    DELAY_REASONS[int(random_() * len(DELAY_REASONS))] if held else None,
                    agent,
                    vehicle,
                ),
                when,
                injection,
            )
        when += step
        actual = due_day + (delay_days or 0) if delayed else due_day - (1 if random_() < 0.2 else 0)
        self._plan(
            SHIPMENTS,
            shipment_id,
            base,
            SHIPMENT_STEP,
            (
                max(legs, 1) + 1,
                "DELIVERED",
                {"country": customer.country, "city": c_city.name},
                actual,
                round(distance * legs / span, 1),
                penalty,
                None,
                agent,
                vehicle,
            ),
            when,
            injection,
        )
        return when

    # -- supplier invoices and payments --------------------------------------------------------------------
    def invoice(self, at: int, fraud_factor: Decimal | None = None, injection: Injection | None = None) -> str:
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
    def price_change(self, at: int) -> None:
        rng = self.rng
        product = rng.choice(self.world.products)
        factor = Decimal(str(round(1 + rng.uniform(-0.15, 0.15), 3)))
        product.price_eur = max(MIN_PRICE, (product.price_eur * factor).quantize(CENT))
        product.stock_quantity = max(0, product.stock_quantity + rng.randint(-50, 200))
        metadata = self._metadata(at, at)
        self.emit(Emitted(REF_PRODUCTS, product.product_id, product_record(product, metadata), at, at))

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
