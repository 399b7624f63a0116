"""Pure enrichment on a known world: reference projections, KNOWN/UNKNOWN/NOT_APPLICABLE, stable ids, geo."""

from __future__ import annotations

from decimal import Decimal

import fastavro
import pytest

from schemas.catalogue import example, load_schema
from services.enricher import join

PRODUCT = {
    "name": "Lumo Audio Pro 7",
    "category": "Electronics",
    "subcategory": "Audio",
    "brand": "Lumo",
    "price": "129.90",
    "currency": "EUR",
}
CUSTOMER = {"segment": "CONSUMER", "region": "EU-Central", "country": "DE"}
STORE = {"name": "Freightline Deutschland", "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"}
WAREHOUSE = {"name": "Hamburg Distribution Centre", "country": "DE", "city": "Hamburg"}


def lookups() -> join.Lookups:
    return join.Lookups.from_mappings({"P-1": PRODUCT}, {"C-1": CUSTOMER}, {"DE": STORE}, {"W-HAM-01": WAREHOUSE})


def _view(product_id: str = "P-1", store_id: str = "DE") -> dict:
    view = example("com.freightline.web.ProductView")
    view["product_id"], view["store_id"] = product_id, store_id
    return view


def _valid(schema_name: str, record: dict) -> None:
    assert fastavro.validate(record, fastavro.parse_schema(load_schema(schema_name)), raise_errors=True)


def test_project_reference_keeps_what_enrichment_needs() -> None:
    record = example("com.freightline.reference.Product")
    projected = join.project_reference(join.PRODUCT, record)
    assert set(projected) == {"name", "category", "subcategory", "brand", "price", "currency"}
    assert projected["price"] == str(record["price"])
    assert join.reference_key(join.PRODUCT, record) == record["product_id"]


def test_product_view_known() -> None:
    result = join.enrich(join.PRODUCT_VIEWS, _view(), lookups(), 1_800_000_000_000)
    record = result.record
    assert result.unknown == [] and result.key == "P-1"
    assert record["product"] == {"product_id": "P-1", "status": "KNOWN", **PRODUCT, "price": Decimal("129.90")}
    assert record["store"] == {"store_id": "DE", "status": "KNOWN", **STORE}
    assert record["metadata"]["event_time"] == join._millis(record["event"]["metadata"]["event_time"])
    assert record["metadata"]["producer"] == "enricher"
    _valid("com.freightline.enriched.EnrichedProductView", record)


def test_missing_references_are_explicit_unknown_markers() -> None:
    result = join.enrich(join.PRODUCT_VIEWS, _view("P-404", "XX"), lookups(), 0)
    assert result.unknown == ["product", "store"]
    product = result.record["product"]
    assert product["status"] == "UNKNOWN" and product["product_id"] == "P-404" and product["name"] is None
    assert result.record["store"]["status"] == "UNKNOWN"
    _valid("com.freightline.enriched.EnrichedProductView", result.record)


def test_clickstream_without_product_or_user_is_not_applicable() -> None:
    click = example("com.freightline.web.ClickstreamEvent")
    click["product_id"], click["user_id"] = None, None
    result = join.enrich(join.CLICKSTREAM, click, lookups(), 0)
    assert result.record["product"]["status"] == "NOT_APPLICABLE"
    assert result.record["customer"]["status"] == "NOT_APPLICABLE"
    assert result.unknown == [] and result.key == click["session_id"]
    _valid("com.freightline.enriched.EnrichedClickstreamEvent", result.record)


def test_order_lines_are_enriched_in_order() -> None:
    order = example("com.freightline.commerce.Order")
    order["customer_id"], order["store_id"] = "C-1", "DE"
    for line, product_id in zip(order["line_items"], ["P-1", "P-404", "P-1"], strict=False):
        line["product_id"] = product_id
    result = join.enrich(join.ORDERS, order, lookups(), 0)
    statuses = [p["status"] for p in result.record["products"]]
    assert len(statuses) == len(order["line_items"])
    assert statuses[0] == "KNOWN" and (len(statuses) < 2 or statuses[1] == "UNKNOWN")
    assert result.record["customer"]["segment"] == "CONSUMER"
    _valid("com.freightline.enriched.EnrichedOrder", result.record)


def test_shipment_event_with_warehouse() -> None:
    event = example("com.freightline.logistics.ShipmentEvent")
    event["customer_id"], event["warehouse_id"] = "C-1", "W-HAM-01"
    result = join.enrich(join.SHIPMENT_EVENTS, event, lookups(), 0)
    assert result.record["warehouse"] == {"warehouse_id": "W-HAM-01", "status": "KNOWN", **WAREHOUSE}
    _valid("com.freightline.enriched.EnrichedShipmentEvent", result.record)


def test_enriched_ids_are_stable_and_distinct_per_kind() -> None:
    first = join.enriched_event_id(join.ORDERS, "0b7f3c4e-5a1d-4f2b-9c8e-1d2a3b4c5d6e")
    assert first == join.enriched_event_id(join.ORDERS, "0b7f3c4e-5a1d-4f2b-9c8e-1d2a3b4c5d6e")
    assert first != join.enriched_event_id(join.CLICKSTREAM, "0b7f3c4e-5a1d-4f2b-9c8e-1d2a3b4c5d6e")


@pytest.mark.parametrize(
    ("ip", "country"),
    [("5.1.2.3", "DE"), ("203.0.113.17", "ZZ"), ("200.1.1.1", None), ("not-an-ip", None), (None, None)],
)
def test_geo_lookup(ip: str | None, country: str | None) -> None:
    assert join.GeoLookup().country(ip) == country


def test_geo_lookup_longest_prefix_wins() -> None:
    geo = join.GeoLookup({"10.0.0.0/8": "AA", "10.1.0.0/16": "BB"})
    assert geo.country("10.1.2.3") == "BB" and geo.country("10.2.0.1") == "AA"


def test_enriched_event_ids_are_uuid5_of_kind_and_source_id() -> None:
    import uuid

    for kind, source_id in [("orders", "o-1"), ("product_views", str(uuid.UUID(int=7))), ("clickstream", "é-ü")]:
        expected = str(uuid.uuid5(join.ENRICHED_ID_NAMESPACE, f"{kind}:{source_id}"))
        assert join.enriched_event_id(kind, source_id) == expected
