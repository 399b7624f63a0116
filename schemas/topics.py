"""Every topic of the catalogue (``catalogue.yaml``) by name, so code names a topic once, from here.

Services, jobs and the main job import these constants instead of writing topic names; the test suite
(``tests/unit/schemas/test_topics.py``) fails when this module and the catalogue disagree. Dead-letter topics are
derived (``services.common.deadletter.dead_letter_topic``), not listed.
"""

from __future__ import annotations

# upstream (remote cluster): keeps the upstream shop's name
UPSTREAM_PRODUCT_VIEWS = "product_views"

# raw events (local cluster)
PRODUCT_VIEWS = "web.product_views.v1"
CLICKSTREAM = "web.clickstream.v1"
ORDERS = "commerce.orders.v1"
SHIPMENT_EVENTS = "logistics.shipment_events.v1"
SUPPLIER_INVOICES = "finance.supplier_invoices.v1"
SUPPLIER_PAYMENTS = "finance.supplier_payments.v1"

# reference data (compacted)
REFERENCE_PRODUCTS = "reference.products.v1"
REFERENCE_CUSTOMERS = "reference.customers.v1"
REFERENCE_STORES = "reference.stores.v1"
REFERENCE_SUPPLIERS = "reference.suppliers.v1"
REFERENCE_WAREHOUSES = "reference.warehouses.v1"

# enriched events
ENRICHED_PRODUCT_VIEWS = "enriched.product_views.v1"
ENRICHED_CLICKSTREAM = "enriched.clickstream.v1"
ENRICHED_ORDERS = "enriched.orders.v1"
ENRICHED_SHIPMENT_EVENTS = "enriched.shipment_events.v1"

# windowed aggregates
AGGREGATES_PRODUCT_VIEWS = "aggregates.product_views.v1"
AGGREGATES_STORE_ORDER_REVENUE = "aggregates.store_order_revenue.v1"
AGGREGATES_ROUTE_SHIPMENT_DELAYS = "aggregates.route_shipment_delays.v1"
AGGREGATES_SERVICE_ERROR_RATE = "aggregates.service_error_rate.v1"
AGGREGATES_CATEGORY_TOP_PRODUCTS = "aggregates.category_top_products.v1"
LATE_EVENTS = "aggregates.late_events.v1"

# detection
DETECTOR_INPUT = "analytics.detector_input.v1"
MIRROR_SOURCE_OFFSETS = "mirror.source_offsets.v1"
ANOMALIES = "analytics.anomalies.v1"
ANOMALY_LABELS = "analytics.anomaly_labels.v1"


def declared() -> set[str]:
    """Every name this module declares."""
    return {value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
