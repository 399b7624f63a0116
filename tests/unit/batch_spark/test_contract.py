"""Pure parts of the Spark jobs: raw columns from the Avro contracts, the lake's families, the JDBC target."""

from __future__ import annotations

from batch_spark.contract import GCS_TOPICS, HDFS_TOPICS, columns_of, families
from batch_spark.daily import TABLES
from batch_spark.warehouse import jdbc_target
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_hdfs.settings import HdfsSinkSettings

SCHEMA = {
    "type": "record",
    "name": "Thing",
    "namespace": "t",
    "fields": [
        {
            "name": "metadata",
            "type": {
                "type": "record",
                "name": "Envelope",
                "fields": [
                    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
                    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                    {"name": "trace_context", "type": ["null", "string"], "default": None},
                ],
            },
        },
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "again", "type": ["null", "t.Kind"], "default": None},
        {"name": "where", "type": {"type": "record", "name": "Place", "fields": [{"name": "x", "type": "double"}]}},
        {"name": "other", "type": "t.Place"},
        {"name": "lines", "type": {"type": "array", "items": "t.Place"}},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "count", "type": "long"},
        {"name": "flag", "type": "boolean"},
        {"name": "label", "type": "string", "default": "N'A"},
        {"name": "size", "type": "int", "default": 3},
    ],
}


def test_columns_follow_the_avro_types_with_the_envelope_flattened() -> None:
    columns = {c.name: (c.pg_type, c.expression, c.nullable) for c in columns_of(SCHEMA)}
    assert columns == {
        "event_id": ("uuid", "`metadata`.`event_id`", False),
        "event_time": ("timestamptz", "`metadata`.`event_time`", False),
        "trace_context": ("text", "`metadata`.`trace_context`", True),
        "day": ("date", "`day`", False),
        "amount": ("numeric(18,2)", "`amount`", False),
        "kind": ("text", "`kind`", False),
        "again": ("text", "`again`", True),
        "where": ("jsonb", "to_json(`where`)", False),
        "other": ("jsonb", "to_json(`other`)", False),
        "lines": ("jsonb", "to_json(`lines`)", False),
        "tags": ("jsonb", "to_json(`tags`)", False),
        "count": ("bigint", "`count`", False),
        "flag": ("boolean", "`flag`", False),
        "label": ("text", "`label`", False),
        "size": ("integer", "`size`", False),
        "ds": ("date", "ds", False),
    }


def test_columns_added_to_an_older_table_take_the_contracts_default() -> None:
    """A field added to a contract carries a default (the compatibility rules ask for one): an older table gains it
    with that default for its rows; a column without one is added nullable."""
    added = {c.name: c.add_sql("raw.things") for c in columns_of(SCHEMA)}
    assert added["label"] == """ALTER TABLE raw.things ADD COLUMN IF NOT EXISTS "label" text NOT NULL DEFAULT 'N''A'"""
    assert added["size"] == 'ALTER TABLE raw.things ADD COLUMN IF NOT EXISTS "size" integer NOT NULL DEFAULT 3'
    assert added["trace_context"] == 'ALTER TABLE raw.things ADD COLUMN IF NOT EXISTS "trace_context" text'
    assert added["count"] == 'ALTER TABLE raw.things ADD COLUMN IF NOT EXISTS "count" bigint'
    shipments = next(f for f in families() if f.name == "shipment_events")
    assert shipments.ddl()[0] == shipments.create_table_sql()
    assert "ADD COLUMN IF NOT EXISTS \"carrier\" text NOT NULL DEFAULT 'UNKNOWN'" in "\n".join(shipments.ddl())


def test_every_lake_family_has_a_unique_event_id_and_exact_money_and_time_types() -> None:
    for family in families():
        types = {c.name: c.pg_type for c in family.columns}
        assert (types["event_id"], types["event_time"], types["ds"]) == ("uuid", "timestamptz", "date"), family.name
        assert 'PRIMARY KEY ("event_id")' in family.create_table_sql()
    orders = {c.name: c.pg_type for c in next(f for f in families() if f.name == "orders").columns}
    assert (orders["order_total"], orders["line_items"], orders["order_date"]) == ("numeric(18,2)", "jsonb", "date")


def test_the_sinks_land_every_family_the_jobs_read() -> None:
    assert set(HdfsSinkSettings().topic_list()) == set(HDFS_TOPICS.values())
    assert set(GcsSinkSettings().topic_list()) == set(GCS_TOPICS.values())
    assert {f.store for f in families() if f.topic in GCS_TOPICS.values()} == {"gcs"}


def test_daily_tables_are_keyed_by_day() -> None:
    for table in TABLES:
        assert table.key[0] == "report_date" and table.columns[-1] == ("report_date", "date")
        assert "PRIMARY KEY" in table.create_sql()


def test_jdbc_target_from_a_libpq_url() -> None:
    url, properties = jdbc_target("postgresql://ann:s%40cret@db.example:6543/warehouse?sslmode=require")
    assert url == "jdbc:postgresql://db.example:6543/warehouse"
    assert (properties["user"], properties["password"], properties["sslmode"]) == ("ann", "s@cret", "require")
    assert properties["stringtype"] == "unspecified"
