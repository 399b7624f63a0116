"""Anomaly injection: draws the labelled anomalies, builds their events with the families and their labels.

An injection is a burst of events a detector should flag (see :mod:`services.generator.anomalies` for the kinds
and the label record). Its events are scheduled like any other; its label is scheduled just after the latest
produce time of its events, so it leaves after all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.generator.anomalies import AnomalyKind, Injection, label_record
from services.generator.config import GeneratorConfig
from services.generator.families import SHOP_SERVICES, Families, route_id
from services.generator.records import ANOMALY_LABELS, Emitted


class Injector:
    """Injects one anomaly per call of :meth:`inject` and builds the labels; counts the labelled ones per kind."""

    def __init__(self, config: GeneratorConfig, families: Families, push: Callable[[int, Any], None]) -> None:
        self.kinds = config.anomaly_kinds
        self.rng = families.rng  # the run's generator and world, shared with the families
        self.world = families.world
        self._envelopes = families.envelopes
        self._families = families
        self._push = push
        self.injected: dict[str, int] = {}

    def inject(self, at: int) -> None:
        """Draw an anomaly of one of the configured kinds starting at ``at``; schedule its events and label."""
        rng = self.rng
        world = self.world
        families = self._families
        emit = families.emit
        kind = rng.choice(self.kinds)
        label_id = self._envelopes.uuid()
        if kind is AnomalyKind.TRAFFIC_SPIKE:
            product = rng.choice(world.products[len(world.products) // 2 :] or world.products)
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
                emit(families.product_view(at + rng.randrange(window), product, referrer, injection))
        elif kind is AnomalyKind.ERROR_BURST:
            service = rng.choice(SHOP_SERVICES)
            count, window = rng.randint(80, 160), rng.randint(30_000, 60_000)
            injection = Injection(
                kind, label_id, "service", service, f"{count} ERROR events from service {service} in {window // 1000}s"
            )
            for _ in range(count):
                emit(families.click(at + rng.randrange(window), "ERROR", service, injection))
        elif kind is AnomalyKind.SHIPMENT_DELAY:
            anchor = rng.choice(world.customers)
            customers = [c for c in world.customers if c.city == anchor.city] or [anchor]
            warehouse = rng.choice(world.warehouses)
            route = route_id(warehouse, anchor.country, anchor.city.code)
            count = rng.randint(6, 12)
            injection = Injection(
                kind, label_id, "route", route, f"{count} shipments on route {route} delivered 3-6 days late"
            )
            for index in range(count):
                customer = rng.choice(customers)
                families.order(at + index * 2_000, customer, warehouse, rng.randint(3, 6), injection)
        else:
            factor = Decimal(str(round(rng.uniform(5, 20), 1)))
            injection = Injection(kind, label_id, "invoice", "", f"payment of {factor}x the invoiced amount")
            injection.entity_key = families.invoice(at, factor, injection)
        self._push(injection.last_produce_ms + 1, injection)  # the label leaves after the last of its events

    def label(self, injection: Injection, at: int) -> Emitted:
        """The label of ``injection`` (all its events), effective at ``at``; counts it as injected."""
        injection.labelled = True
        self.injected[injection.kind.value] = self.injected.get(injection.kind.value, 0) + 1
        record = label_record(injection, self._envelopes.metadata(at, at), emitted_only=False)
        return Emitted(ANOMALY_LABELS, injection.entity_key, record, at, at)
