"""The packaged contracts: schemas, catalogue and examples are consistent and usable with fastavro."""

from __future__ import annotations

import io
import json
from typing import Any

import avro.schema
import fastavro
import pytest
from fastavro.validation import validate

from schemas.catalogue import (
    AVRO_DIR,
    CatalogueError,
    all_schema_names,
    example,
    load_catalogue,
    load_schema,
    parse_catalogue,
    schema_text,
)
from schemas.loader import DirectorySource, iter_named_types

NAMES = all_schema_names()
CATALOGUE = load_catalogue()
VALUE_SCHEMAS = sorted({spec.value_schema for spec in CATALOGUE.topics})


def test_every_event_family_has_a_schema() -> None:
    expected = {
        "com.freightline.common.EventMetadata",
        "com.freightline.common.DeadLetter",
        "com.freightline.web.ProductView",
        "com.freightline.web.ClickstreamEvent",
        "com.freightline.commerce.Order",
        "com.freightline.logistics.ShipmentEvent",
        "com.freightline.finance.SupplierInvoice",
        "com.freightline.finance.SupplierPayment",
        "com.freightline.reference.Product",
        "com.freightline.reference.Customer",
        "com.freightline.reference.Store",
        "com.freightline.reference.Supplier",
        "com.freightline.reference.Warehouse",
        "com.freightline.enriched.EnrichedProductView",
        "com.freightline.enriched.EnrichedClickstreamEvent",
        "com.freightline.enriched.EnrichedOrder",
        "com.freightline.enriched.EnrichedShipmentEvent",
        "com.freightline.analytics.Anomaly",
        "com.freightline.analytics.AnomalyLabel",
        "com.freightline.aggregates.ProductViewsWindow",
        "com.freightline.aggregates.StoreOrderRevenueWindow",
        "com.freightline.aggregates.RouteShipmentDelaysWindow",
    }
    assert expected <= set(NAMES)


@pytest.mark.parametrize("full_name", NAMES)
def test_schema_expands_and_parses(full_name: str) -> None:
    expanded = load_schema(full_name)
    assert expanded["name"] == full_name
    fastavro.parse_schema(expanded)
    avro.schema.parse(schema_text(full_name))  # the registry's parser accepts it too
    defined = [node["name"] for node in iter_named_types(expanded)]
    assert len(defined) == len(set(defined)), "each named type is defined once in the expanded schema"


@pytest.mark.parametrize("full_name", NAMES)
def test_schema_text_is_compact_and_self_contained(full_name: str) -> None:
    text = schema_text(full_name)
    assert json.loads(text) == load_schema(full_name)
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    # every referenced named type is defined inside the text: parse it with no other schema known
    fastavro.parse_schema(json.loads(text), named_schemas={})


@pytest.mark.parametrize("full_name", NAMES)
def test_every_record_and_field_has_a_doc(full_name: str) -> None:
    raw = DirectorySource(AVRO_DIR).read(full_name)
    assert raw is not None
    assert raw.get("doc", "").strip(), f"{full_name} has no doc"
    for field in raw.get("fields", []):
        assert field.get("doc", "").strip(), f"{full_name}.{field['name']} has no doc"


def _dead_letter() -> dict[str, Any]:
    return load_schema("com.freightline.common.DeadLetter")


def test_dead_letter_has_exactly_the_agreed_fields() -> None:
    fields = {field["name"]: field for field in _dead_letter()["fields"]}
    assert list(fields) == [
        "original_key",
        "original_value",
        "original_headers",
        "source_topic",
        "source_partition",
        "source_offset",
        "source_timestamp",
        "error_type",
        "error_message",
        "error_stack",
        "service",
        "failed_at",
        "attempts",
    ]
    assert fields["original_key"]["type"] == ["null", "bytes"]
    assert fields["original_headers"]["type"]["items"]["name"] == "com.freightline.common.DeadLetterHeader"
    assert fields["source_timestamp"]["type"] == ["null", {"type": "long", "logicalType": "timestamp-millis"}]
    assert fields["failed_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["attempts"]["type"] == "int" and fields["attempts"]["default"] == 1


def test_event_metadata_separates_event_and_ingest_time() -> None:
    fields = {field["name"]: field["type"] for field in load_schema("com.freightline.common.EventMetadata")["fields"]}
    assert fields["event_id"] == {"type": "string", "logicalType": "uuid"}
    assert fields["event_time"]["logicalType"] == fields["ingest_time"]["logicalType"] == "timestamp-millis"
    assert fields["trace_context"] == ["null", "string"]


def test_optional_fields_default_to_null_and_enums_have_defaults() -> None:
    source = DirectorySource(AVRO_DIR)
    for full_name in NAMES:
        for node in iter_named_types(load_schema(full_name)):
            if node["type"] == "record":
                for field in node["fields"]:
                    if isinstance(field["type"], list) and field["type"][0] == "null":
                        assert field.get("default", "missing") is None, f"{node['name']}.{field['name']}"
        raw = source.read(full_name)
        assert raw is not None
        if raw["type"] == "enum":
            assert raw.get("default") in raw["symbols"], f"{full_name} needs a default symbol"


def test_catalogue_refers_to_existing_schemas_with_existing_keys() -> None:
    assert len(CATALOGUE.topics) == len({spec.name for spec in CATALOGUE.topics})
    for spec in CATALOGUE.topics:
        assert spec.value_schema in NAMES, spec.name
        assert spec.subject == f"{spec.name}-value"
        if not spec.is_dead_letter:
            assert CATALOGUE.dead_letter_for(spec.name).value_schema == "com.freightline.common.DeadLetter"


def test_catalogue_topics_and_defaults() -> None:
    orders = CATALOGUE.topic("commerce.orders.v1")
    assert (orders.cluster, orders.key_field, orders.compatibility) == ("local", "order_id", "BACKWARD_TRANSITIVE")
    assert orders.topic_config() == {"cleanup.policy": "delete", "retention.ms": "604800000"}
    products = CATALOGUE.topic("reference.products.v1")
    assert products.cleanup_policy == "compact" and products.retention_ms is None
    assert CATALOGUE.topic("product_views").cluster == "remote"
    assert CATALOGUE.topic("web.product_views.v1").value_schema == CATALOGUE.topic("product_views").value_schema
    assert {spec.cluster for spec in CATALOGUE.on_cluster("local")} == {"local"}
    with pytest.raises(CatalogueError):
        CATALOGUE.topic("no.such.topic.v1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster": "elsewhere"}, "cluster"),
        ({"cleanup_policy": "compact"}, "compacted"),
        ({"retention_ms": None}, "retention_ms"),
        ({"compatibility": "SIDEWAYS"}, "compatibility"),
        ({"partitions": 0}, "partitions"),
    ],
)
def test_catalogue_rejects_invalid_entries(change: dict[str, Any], message: str) -> None:
    entry = {
        "name": "web.things.v1",
        "cluster": "local",
        "key": "thing_id",
        "value_schema": "com.freightline.web.ProductView",
        "partitions": 3,
        "cleanup_policy": "delete",
        "retention_ms": 1000,
        "owner": "generator",
        "description": "Things.",
    }
    entry.update(change)
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue({"topics": [entry]})


@pytest.mark.parametrize("full_name", VALUE_SCHEMAS)
def test_example_validates_and_round_trips(full_name: str) -> None:
    parsed = fastavro.parse_schema(load_schema(full_name))
    record = example(full_name)
    assert validate(record, parsed, raise_errors=True)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, parsed, None, return_record_name=True, return_record_name_override=True)
    assert back == record


def test_order_example_is_arithmetically_consistent() -> None:
    order = example("com.freightline.commerce.Order")
    for line in order["line_items"]:
        assert line["sales_amount"] == line["price"] * line["quantity"]
    assert order["order_total"] == sum(line["sales_amount"] for line in order["line_items"])


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema("com.freightline.web.ProductView")
    first["fields"].clear()
    assert load_schema("com.freightline.web.ProductView")["fields"]
