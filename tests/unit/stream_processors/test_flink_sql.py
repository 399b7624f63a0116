"""Flink SQL built from the contracts and settings (pure: no Flink needed)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import fastavro
import pytest

from schemas import topics
from schemas.catalogue import example_path, load_catalogue, schema_text
from schemas.conversion import from_json
from services.common.settings import KafkaSettings, PostgresSettings, SchemaRegistrySettings
from stream_processors.flink_sql import (
    columns,
    interval,
    jdbc_url,
    job_config,
    pipeline_name,
    pipeline_names,
    projected,
    shared_config,
    window_event_id,
)
from stream_processors.product_views import JOB, ProductViewsJobSettings
from tests.unit.conftest import SecureKafka


def _columns(topic: str) -> list[str]:
    return columns(schema_text(load_catalogue().topic(topic).value_schema))


def test_columns_follow_the_contract_with_flink_nullability() -> None:
    metadata = (
        "`metadata` ROW<`event_id` STRING NOT NULL, `event_time` TIMESTAMP(3) NOT NULL, "
        "`ingest_time` TIMESTAMP(3) NOT NULL, `producer` STRING NOT NULL, `trace_context` STRING> NOT NULL"
    )
    assert _columns(topics.PRODUCT_VIEWS) == [
        metadata,
        "`product_id` STRING NOT NULL",
        "`device_id` STRING NOT NULL",
        "`store_id` STRING NOT NULL",
        "`referrer_url` STRING",
        "`local_time` STRING NOT NULL",
        "`remote_ip` STRING",
    ]
    assert _columns(topics.AGGREGATES_PRODUCT_VIEWS)[1:] == [
        "`product_id` STRING NOT NULL",
        "`window_start` TIMESTAMP(3) NOT NULL",
        "`window_end` TIMESTAMP(3) NOT NULL",
        "`view_count` BIGINT NOT NULL",
        "`unique_visitors` BIGINT NOT NULL",
        "`last_view_time` TIMESTAMP(3) NOT NULL",
    ]


def test_columns_cover_decimals_enums_and_arrays_of_records() -> None:
    order = " ".join(_columns(topics.ORDERS))
    assert "DECIMAL(" in order and "ARRAY<ROW<" in order


def test_interval_is_a_day_to_second_literal() -> None:
    assert interval(5_000) == "INTERVAL '0 00:00:05.000' DAY TO SECOND(3)"
    assert interval(90_061_001) == "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)"


def test_jdbc_url_from_a_libpq_url() -> None:
    assert jdbc_url("postgresql://freightline@127.0.0.1:15432/freightline") == (
        "jdbc:postgresql://127.0.0.1:15432/freightline",
        "freightline",
        "",
    )
    assert jdbc_url("postgresql://u:p@db/warehouse")[1:] == ("u", "p")
    with pytest.raises(ValueError, match="POSTGRES_DSN"):
        jdbc_url("mysql://db/x")


def test_window_event_id_is_a_stable_name_based_uuid() -> None:
    start = dt.datetime(2026, 12, 5, 14, 47)
    first = uuid.UUID(window_event_id(["P-1"], start))
    assert first.version == 3 and first.variant == uuid.RFC_4122
    assert window_event_id(["P-1"], start) == str(first)
    assert window_event_id(["P-2"], start) != str(first)
    assert window_event_id(["P-1"], start + dt.timedelta(minutes=1)) != str(first)


def test_job_statements_use_the_configured_topics_bound_and_exactly_once_sink() -> None:
    settings = ProductViewsJobSettings(source_topic="in", sink_topic="out", max_out_of_orderness_ms=30_000)
    definitions, inserts = JOB.statements(
        settings,
        KafkaSettings(bootstrap_servers="k:1"),
        SchemaRegistrySettings(url="http://r:2"),
        PostgresSettings(dsn="postgresql://u@h:3/d"),
    )
    source, sink, late, warehouse = definitions[:4]
    assert "'topic' = 'in'" in source and "INTERVAL '0 00:00:30.000' DAY TO SECOND(3)" in source
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sink and "'topic' = 'out'" in sink
    assert "'url' = 'jdbc:postgresql://h:3/d?user=u'" in warehouse
    assert "PRIMARY KEY (`window_start`, `window_end`, `product_id`) NOT ENFORCED" in warehouse
    assert "CREATE TEMPORARY TABLE `product_views_1m_late_events`" in late
    assert "'topic' = 'aggregates.late_events.v1'" in late
    assert "'sink.transactional-id-prefix' = 'flink-product-views-late_events'" in late
    assert "'sink.transactional-id-prefix' = 'flink-product-views-aggregates'" in sink
    assert len(inserts) == 3
    assert inserts[2].startswith("INSERT INTO `product_views_1m_late_events`")
    assert "CURRENT_WATERMARK(`event_time`)" in inserts[2] and "'product_views_1m', 'in'" in inserts[2]
    config = job_config(settings, "j")
    assert config["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert config["table.local-time-zone"] == "UTC"


def test_store_order_revenue_keys_by_store_and_currency_with_exact_money() -> None:
    from stream_processors.store_order_revenue import JOB as REVENUE
    from stream_processors.store_order_revenue import StoreOrderRevenueJobSettings

    ddl = REVENUE.postgres_ddl("streaming.r")
    assert "PRIMARY KEY (window_start, window_end, store_id, currency)" in ddl
    assert "revenue numeric(18, 2) NOT NULL" in ddl
    definitions, inserts = REVENUE.statements(
        StoreOrderRevenueJobSettings(), KafkaSettings(), SchemaRegistrySettings(), PostgresSettings()
    )
    assert any("CROSS JOIN UNNEST" in statement for statement in definitions)
    assert "MD5(CONCAT_WS('|', `store_id`, `currency`, CAST(`window_start` AS STRING)))" in inserts[0]


def test_route_delays_map_every_delay_reason_of_the_contract_and_read_a_projection() -> None:
    from schemas.catalogue import load_schema
    from stream_processors.route_shipment_delays import DELAY_REASONS
    from stream_processors.route_shipment_delays import JOB as ROUTES

    assert tuple(load_schema("com.freightline.logistics.DelayReason")["symbols"]) == DELAY_REASONS
    source = schema_text(load_catalogue().topic(topics.SHIPMENT_EVENTS).value_schema)
    reader = json.loads(projected(source, ROUTES.source_fields))
    assert [field["name"] for field in reader["fields"]] == list(
        dict.fromkeys(path.split(".")[0] for path in ROUTES.source_fields)
    )
    assert "`current_location`" not in " ".join(columns(json.dumps(reader)))
    with pytest.raises(ValueError, match="no fields"):
        projected(source, ("route_id", "nope"))


def test_a_projection_selects_fields_of_nested_records_and_keeps_every_definition_it_uses() -> None:
    from stream_processors.category_top_products import JOB as TOP_PRODUCTS
    from stream_processors.store_order_revenue import JOB as REVENUE

    orders = schema_text(load_catalogue().topic(topics.ORDERS).value_schema)
    reader = json.loads(projected(orders, REVENUE.source_fields))
    fields = {field["name"]: field for field in reader["fields"]}
    assert [f["name"] for f in fields["metadata"]["type"]["fields"]] == ["event_id", "event_time"]
    assert [f["name"] for f in fields["line_items"]["type"]["items"]["fields"]] == ["line_number", "quantity"]
    assert "customer_id" not in fields
    fastavro.parse_schema(reader)  # a valid schema: every name it uses is defined in it
    # a record of the full contract reads through it (Avro resolution skips what the projection left out)
    example = json.loads(example_path("com.freightline.commerce.Order").read_text())
    written = fastavro.parse_schema(json.loads(orders))
    record = from_json(json.loads(orders), example)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, written, record)
    buffer.seek(0)
    read: Any = fastavro.schemaless_reader(buffer, written, fastavro.parse_schema(reader))
    assert read["line_items"] == [
        {"line_number": line["line_number"], "quantity": line["quantity"]} for line in record["line_items"]
    ]
    enriched = schema_text(load_catalogue().topic(topics.ENRICHED_PRODUCT_VIEWS).value_schema)
    top = columns(projected(enriched, TOP_PRODUCTS.source_fields))
    assert top[1] == "`event` ROW<`product_id` STRING NOT NULL, `device_id` STRING NOT NULL> NOT NULL"
    # the view's own metadata defines the type its event's metadata refers to: dropping it is refused
    with pytest.raises(ValueError, match="drops the definitions of"):
        projected(enriched, ("event",))
    with pytest.raises(ValueError, match="no fields"):
        projected(enriched, ("event.nope",))
    with pytest.raises(ValueError, match="only records"):
        projected(enriched, ("metadata.event_id.x",))


def test_top_products_is_a_window_top_n_whose_late_events_report_the_last_hopping_window() -> None:
    from stream_processors.category_top_products import JOB as TOP_PRODUCTS
    from stream_processors.category_top_products import CategoryTopProductsJobSettings

    definitions, inserts = TOP_PRODUCTS.statements(
        CategoryTopProductsJobSettings(), KafkaSettings(), SchemaRegistrySettings(), PostgresSettings()
    )
    windows = definitions[-1]
    assert "TABLE(HOP(TABLE `category_views`" in windows and "ROW_NUMBER() OVER" in windows
    assert "PARTITION BY `window_start`, `window_end`, `category`" in windows and "`row_number` <= 10" in windows
    late = inserts[2]
    assert "FROM `category_views`" in late and "EXTRACT(MINUTE FROM `event_time`), 5)" in late
    assert "TIMESTAMPADD(MINUTE, 10, `window_start`)" in late
    assert "PRIMARY KEY (window_start, window_end, category, rank)" in TOP_PRODUCTS.postgres_ddl("streaming.t")


def test_error_rate_reads_a_projection_without_the_details_union() -> None:
    from stream_processors.service_error_rate import JOB as ERRORS

    source = schema_text(load_catalogue().topic(topics.CLICKSTREAM).value_schema)
    reader = columns(projected(source, ERRORS.source_fields))
    assert [column.split()[0] for column in reader] == ["`metadata`", "`event_type`", "`level`", "`service`"]
    with pytest.raises(ValueError, match="unions other than"):
        columns(source)


def test_jobs_run_together_are_named_after_each_deployment_and_share_one_configuration() -> None:
    from stream_processors.service_error_rate import JOB as ERRORS
    from stream_processors.service_error_rate import ServiceErrorRateJobSettings

    views, errors = ProductViewsJobSettings(group_id="g1"), ServiceErrorRateJobSettings(group_id="g2")
    together = pipeline_name([(JOB, views), (ERRORS, errors)])
    assert together == "product_views_1m [g1] + service_error_rate_1m [g2]"
    assert pipeline_names(together) == [JOB.pipeline_name(views), ERRORS.pipeline_name(errors)]
    assert pipeline_name([(JOB, views)]) == JOB.pipeline_name(views) == pipeline_names(JOB.pipeline_name(views))[0]

    assert shared_config([job_config(views, together), job_config(errors, together)]) == job_config(views, together)
    slower = ServiceErrorRateJobSettings(group_id="g2", checkpoint_interval_ms=60_000)
    with pytest.raises(ValueError, match=r"must share execution\.checkpointing\.interval"):
        shared_config([job_config(views, together), job_config(slower, together)])


def test_a_secure_cluster_gives_every_kafka_table_its_credentials_and_the_ca(secure_kafka: SecureKafka) -> None:
    kafka = secure_kafka()
    ca = kafka.ssl_ca_location
    definitions, _ = JOB.statements(
        ProductViewsJobSettings(), kafka, SchemaRegistrySettings(url="http://r:2"), PostgresSettings()
    )
    source, sink, late = definitions[:3]
    for table in (source, sink, late):
        assert "'properties.security.protocol' = 'SASL_SSL'" in table
        assert "'properties.sasl.mechanism' = 'SCRAM-SHA-512'" in table
        # the login module of the connector's shaded Kafka client (no other is on the cluster's class path)
        login = 'ScramLoginModule required username="stream" password="pw";'  # pragma: allowlist secret
        assert f"'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.{login}'" in table
        assert "'properties.ssl.truststore.type' = 'PEM'" in table
        assert f"'properties.ssl.truststore.location' = '{ca}'" in table
    plaintext, _ = JOB.statements(
        ProductViewsJobSettings(), KafkaSettings(), SchemaRegistrySettings(url="http://r:2"), PostgresSettings()
    )
    assert "truststore" not in plaintext[0]
