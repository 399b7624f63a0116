"""What the engine emits: the catalogue topics the generator writes and the record handed to Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import topics
from services.generator.anomalies import Injection
from services.generator.envelope import metadata

# Catalogue names of the topics the generator writes.
PRODUCT_VIEWS = topics.UPSTREAM_PRODUCT_VIEWS
CLICKSTREAM = topics.CLICKSTREAM
ORDERS = topics.ORDERS
SHIPMENTS = topics.SHIPMENT_EVENTS
INVOICES = topics.SUPPLIER_INVOICES
PAYMENTS = topics.SUPPLIER_PAYMENTS
ANOMALY_LABELS = topics.ANOMALY_LABELS
REF_PRODUCTS = topics.REFERENCE_PRODUCTS
REF_CUSTOMERS = topics.REFERENCE_CUSTOMERS
REF_STORES = topics.REFERENCE_STORES
REF_SUPPLIERS = topics.REFERENCE_SUPPLIERS
REF_WAREHOUSES = topics.REFERENCE_WAREHOUSES

EVENT_TOPICS = (PRODUCT_VIEWS, CLICKSTREAM, ORDERS, SHIPMENTS, INVOICES, PAYMENTS)
REFERENCE_TOPICS = (REF_STORES, REF_WAREHOUSES, REF_SUPPLIERS, REF_PRODUCTS, REF_CUSTOMERS)
ALL_TOPICS = (*REFERENCE_TOPICS, *EVENT_TOPICS, ANOMALY_LABELS)


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


@dataclass(slots=True)
class Planned:
    """A future record of an entity, kept small until it is due: the fields it shares with the entity's other
    records (``base``, one dict for all of them, not copied), its own fields (``names``, a tuple per kind of step,
    and ``values``) and its envelope. A paced stream holds every open order's and shipment's future records for
    minutes (hundreds of thousands at a few thousand events per second): a tenth of the memory of built records."""

    topic: str
    key: str
    base: dict[str, Any]
    names: tuple[str, ...]
    values: tuple[Any, ...]
    event_time_ms: int
    produce_time_ms: int
    event_id: str
    producer: str
    injection: Injection | None = None

    def emitted(self) -> Emitted:
        """The record: ``base`` updated with the step's fields and the envelope."""
        value = self.base.copy()
        value.update(zip(self.names, self.values, strict=True))
        value["metadata"] = metadata(self.event_id, self.event_time_ms, self.produce_time_ms, self.producer)
        return Emitted(self.topic, self.key, value, self.event_time_ms, self.produce_time_ms, self.injection)
