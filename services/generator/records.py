"""What the engine emits: the catalogue topics the generator writes and the record handed to Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.generator.anomalies import Injection

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
