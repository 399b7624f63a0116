"""The raw families of the lake and their PostgreSQL columns, derived from the Avro contracts (pure: no Spark here).

Each family is one catalogue topic; its table ``raw.<family>`` has one column per top-level field of the topic's
value schema, with the envelope (``metadata``) flattened into ``event_id``, ``event_time``, ... Types follow the
Avro types exactly: ``uuid`` strings are ``uuid``, ``timestamp-millis`` is ``timestamptz``, ``date`` is ``date``,
decimals are ``numeric(p, s)``, enums are ``text``, records, arrays and maps are ``jsonb``. ``ds`` (the event date,
UTC: the lake partition the row was read from) is the day the loads replace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas import topics
from schemas.catalogue import load_catalogue, load_schema

METADATA = "metadata"
DAY_COLUMN = "ds"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_PRIMITIVES = {
    "string": "text",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "boolean": "boolean",
    "bytes": "bytea",
}


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    expression: str  # Spark SQL over the Avro row: the column's value
    nullable: bool
    default: str | None = None  # SQL literal of the contract's default (what a reader gives records without it)

    def add_sql(self, table: str) -> str:
        """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``: a table created before the contract gained the field gets
        it, its old rows the contract's default (a field without a usable default is added nullable)."""
        constraint = f" NOT NULL DEFAULT {self.default}" if not self.nullable and self.default is not None else ""
        return f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{self.name}" {self.pg_type}{constraint}'


@dataclass(frozen=True)
class Rule:
    """An invariant of the contract: rows where ``violated`` (Spark SQL, over the Avro row) holds are rejected."""

    reason: str
    violated: str


HDFS = "hdfs"
GCS = "gcs"


@dataclass(frozen=True)
class Family:
    name: str  # raw.<name>
    topic: str  # the lake directory (the catalogue topic)
    store: str  # where its files are: HDFS or GCS
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    avro_schema: str  # the value schema (JSON): the shape of a day without files

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    def create_table_sql(self) -> str:
        """DDL of ``raw.<family>``: event id unique, one column per contract field."""
        lines = [f'"{c.name}" {c.pg_type}{"" if c.nullable else " NOT NULL"}' for c in self.columns]
        lines.append('PRIMARY KEY ("event_id")')
        return f"CREATE TABLE IF NOT EXISTS {self.table} (\n  " + ",\n  ".join(lines) + "\n)"

    def ddl(self) -> list[str]:
        """The table, then every column it may lack (a table created by an older contract: fields added since)."""
        return [self.create_table_sql(), *(column.add_sql(self.table) for column in self.columns)]


def _sql_literal(value: Any, kind: str) -> str | None:
    """An Avro default as a PostgreSQL literal of type ``kind`` (strings, numbers, booleans; None otherwise)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and kind != "jsonb":
        return repr(value)
    if isinstance(value, str) and kind in ("text", "date", "uuid"):
        return "'" + value.replace("'", "''") + "'"
    return None


def _non_null(avro_type: Any) -> tuple[Any, bool]:
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        nullable = len(rest) < len(avro_type)
        return (rest[0] if len(rest) == 1 else rest), nullable
    return avro_type, False


def _named(schema: Any, found: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    """Every named type defined inside ``schema`` by full name (a later use refers to it by name only)."""
    if isinstance(schema, list):
        for item in schema:
            _named(item, found, namespace)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            name = schema["name"]
            namespace = name.rsplit(".", 1)[0] if "." in name else schema.get("namespace", namespace)
            found[name if "." in name or not namespace else f"{namespace}.{name}"] = schema
        for value in schema.values():
            if isinstance(value, (dict, list)):
                _named(value, found, namespace)
    return found


def pg_type(avro_type: Any, named: dict[str, Any]) -> str:
    """PostgreSQL type of a (non-null) Avro type."""
    if isinstance(avro_type, str) and avro_type in named:
        avro_type = named[avro_type]
    if isinstance(avro_type, list):
        return "jsonb"
    if isinstance(avro_type, str):
        return _PRIMITIVES[avro_type]
    kind, logical = avro_type.get("type"), avro_type.get("logicalType")
    if logical == "decimal":
        return f"numeric({avro_type['precision']},{avro_type.get('scale', 0)})"
    if logical in ("timestamp-millis", "timestamp-micros"):
        return "timestamptz"
    if logical == "date":
        return "date"
    if logical == "uuid":
        return "uuid"
    if kind == "enum":
        return "text"
    if kind in ("record", "array", "map"):
        return "jsonb"
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if isinstance(kind, (dict, list)):
        return pg_type(kind, named)
    raise ValueError(f"no PostgreSQL type for Avro type {avro_type!r}")


def columns_of(schema: dict[str, Any]) -> tuple[Column, ...]:
    """The raw table's columns for a record schema (envelope flattened, nested values as JSON), then ``ds``."""
    named = _named(schema, {})
    result: list[Column] = []

    def add(field: dict[str, Any], path: str) -> None:
        inner, nullable = _non_null(field["type"])
        kind = pg_type(inner, named)
        quoted = ".".join(f"`{part}`" for part in path.split("."))
        expression = f"to_json({quoted})" if kind == "jsonb" else quoted
        default = _sql_literal(field["default"], kind) if "default" in field else None
        result.append(Column(field["name"], kind, expression, nullable, default))

    for field in schema["fields"]:
        if field["name"] == METADATA:
            envelope = named.get(field["type"], field["type"]) if isinstance(field["type"], str) else field["type"]
            for inner in envelope["fields"]:
                add(inner, f"{METADATA}.{inner['name']}")
        else:
            add(field, field["name"])
    result.append(Column(DAY_COLUMN, "date", DAY_COLUMN, False))
    return tuple(result)


# Invariants every event obeys, then each family's own (from the contracts' docs).
COMMON_RULES = (
    Rule("event_id is not a UUID", f"metadata.event_id IS NULL OR NOT metadata.event_id RLIKE '{UUID_PATTERN}'"),
    Rule("event_time missing", "metadata.event_time IS NULL"),
    Rule("event_time outside the partition's day", f"to_date(metadata.event_time) <> {DAY_COLUMN}"),
)
FAMILY_RULES: dict[str, tuple[Rule, ...]] = {
    "orders": (
        Rule("negative money: order_total", "order_total < 0"),
        Rule("no line items", "size(line_items) = 0"),
        Rule("negative money: line price", "exists(line_items, l -> l.price < 0)"),
        Rule(
            "line sales_amount is not price x quantity",
            "exists(line_items, l -> l.sales_amount <> l.price * l.quantity)",
        ),
        Rule(
            "order_total is not the sum of the lines' sales_amount",
            "aggregate(line_items, CAST(0 AS DECIMAL(38,2)), (acc, l) -> acc + l.sales_amount) <> order_total",
        ),
        Rule("ship_date before order_date", "ship_date < order_date"),
    ),
    "shipment_events": (
        Rule(
            "negative money: shipment cost, revenue or penalty",
            "shipment_cost < 0 OR revenue_generated < 0 OR delivery_penalty < 0",
        ),
    ),
    "clickstream": (Rule("negative session duration", "session_duration_seconds < 0"),),
    "product_views": (),
    "supplier_invoices": (
        Rule("negative money: amount", "amount < 0"),
        Rule("due_date before issue_date", "due_date < issue_date"),
    ),
    "supplier_payments": (
        Rule("negative money: amount", "amount < 0"),
        Rule("payment_delay_days is not paid_date - due_date", "payment_delay_days <> datediff(paid_date, due_date)"),
    ),
}

# The lake's families: table name -> catalogue topic, in HDFS (the HDFS sink) and in GCS (finance, the GCS sink).
HDFS_TOPICS: dict[str, str] = {
    "clickstream": topics.CLICKSTREAM,
    "orders": topics.ORDERS,
    "shipment_events": topics.SHIPMENT_EVENTS,
    "product_views": topics.PRODUCT_VIEWS,
}
GCS_TOPICS: dict[str, str] = {
    "supplier_invoices": topics.SUPPLIER_INVOICES,
    "supplier_payments": topics.SUPPLIER_PAYMENTS,
}
LAKE_TOPICS: dict[str, str] = {**HDFS_TOPICS, **GCS_TOPICS}


def family(name: str) -> Family:
    topic = LAKE_TOPICS[name]
    schema = load_schema(load_catalogue().topic(topic).value_schema)
    store = HDFS if name in HDFS_TOPICS else GCS
    return Family(name, topic, store, columns_of(schema), COMMON_RULES + FAMILY_RULES[name], json.dumps(schema))


def families() -> list[Family]:
    return [family(name) for name in LAKE_TOPICS]
