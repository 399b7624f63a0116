"""The daily tables (pure: Spark SQL text and PostgreSQL DDL, no Spark here).

Each query runs over temporary views named after the raw families (``product_views``, ``orders``, ...) holding one
day's clean rows (contract invariants met, one row per event id) as read from the lake's Avro files, and yields the
table's rows for that day (``report_date``).
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECT = "(direct)"  # referrer_views_daily's referrer_url for views without a referrer (direct traffic)
PLACED = "PLACED"
ERROR = "ERROR"
DELIVERED = "DELIVERED"


@dataclass(frozen=True)
class DailyTable:
    name: str  # analytics.<name>; also the Parquet folder
    sources: tuple[str, ...]  # raw families it reads
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type), report_date last
    key: tuple[str, ...]
    query: str

    @property
    def table(self) -> str:
        return f"analytics.{self.name}"

    def create_sql(self) -> str:
        lines = [f'"{name}" {kind} NOT NULL' if name in self.key else f'"{name}" {kind}' for name, kind in self.columns]
        lines.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in self.key) + ")")
        return f"CREATE TABLE IF NOT EXISTS {self.table} (\n  " + ",\n  ".join(lines) + "\n)"


TABLES: tuple[DailyTable, ...] = (
    DailyTable(
        "product_views_daily",
        ("product_views",),
        (
            ("product_id", "text"),
            ("view_count", "bigint"),
            ("unique_visitors", "bigint"),
            ("last_view_time", "timestamptz"),
            ("report_date", "date"),
        ),
        ("report_date", "product_id"),
        "SELECT product_id, count(*) AS view_count, count(DISTINCT device_id) AS unique_visitors, "
        "max(metadata.event_time) AS last_view_time, ds AS report_date FROM product_views GROUP BY product_id, ds",
    ),
    DailyTable(
        "country_views_daily",
        ("product_views",),
        (("store_id", "text"), ("view_count", "bigint"), ("unique_visitors", "bigint"), ("report_date", "date")),
        ("report_date", "store_id"),
        "SELECT store_id, count(*) AS view_count, count(DISTINCT device_id) AS unique_visitors, ds AS report_date "
        "FROM product_views GROUP BY store_id, ds",
    ),
    DailyTable(
        "referrer_views_daily",
        ("product_views",),
        (("referrer_url", "text"), ("view_count", "bigint"), ("report_date", "date")),
        ("report_date", "referrer_url"),
        f"SELECT coalesce(referrer_url, '{DIRECT}') AS referrer_url, count(*) AS view_count, ds AS report_date "
        f"FROM product_views GROUP BY coalesce(referrer_url, '{DIRECT}'), ds",
    ),
    DailyTable(
        "order_revenue_daily",
        ("orders",),
        (
            ("store_id", "text"),
            ("currency", "text"),
            ("order_count", "bigint"),
            ("item_count", "bigint"),
            ("revenue", "numeric(20,2)"),
            ("report_date", "date"),
        ),
        ("report_date", "store_id", "currency"),
        # Orders placed that day (their PLACED event), as the streaming window counts them.
        "SELECT store_id, currency, count(DISTINCT order_id) AS order_count, "
        "sum(aggregate(line_items, 0L, (n, l) -> n + l.quantity)) AS item_count, "
        "CAST(sum(order_total) AS DECIMAL(20,2)) AS revenue, ds AS report_date "
        f"FROM orders WHERE status = '{PLACED}' GROUP BY store_id, currency, ds",
    ),
    DailyTable(
        "shipment_on_time_daily",
        ("shipment_events",),
        (
            ("route_id", "text"),
            ("carrier", "text"),
            ("delivered_count", "bigint"),
            ("on_time_count", "bigint"),
            ("on_time_rate", "numeric(9,6)"),
            ("report_date", "date"),
        ),
        ("report_date", "route_id", "carrier"),
        # Shipments delivered that day (their DELIVERED event) and those delivered on or before the promised date;
        # the rate rounded half up to 6 decimals.
        "SELECT route_id, carrier, count(DISTINCT shipment_id) AS delivered_count, "
        "count(DISTINCT CASE WHEN actual_delivery_date <= estimated_delivery_date THEN shipment_id END) "
        "AS on_time_count, CAST(round(CAST(count(DISTINCT CASE WHEN actual_delivery_date <= estimated_delivery_date "
        "THEN shipment_id END) AS DECIMAL(20,0)) / count(DISTINCT shipment_id), 6) AS DECIMAL(9,6)) AS on_time_rate, "
        f"ds AS report_date FROM shipment_events WHERE status = '{DELIVERED}' GROUP BY route_id, carrier, ds",
    ),
    DailyTable(
        "supplier_payment_delay_daily",
        ("supplier_payments",),
        (
            ("supplier_id", "text"),
            ("payment_count", "bigint"),
            ("total_delay_days", "bigint"),
            ("max_delay_days", "integer"),
            ("avg_delay_days", "numeric(12,2)"),
            ("report_date", "date"),
        ),
        ("report_date", "supplier_id"),
        # Days from the invoice's due date to the payment (negative: paid early), of the payments made that day;
        # the average in exact decimals, rounded half up to cents of a day.
        "SELECT supplier_id, count(*) AS payment_count, sum(datediff(paid_date, due_date)) AS total_delay_days, "
        "max(datediff(paid_date, due_date)) AS max_delay_days, "
        "CAST(round(CAST(sum(datediff(paid_date, due_date)) AS DECIMAL(20,0)) / count(*), 2) AS DECIMAL(12,2)) "
        "AS avg_delay_days, ds AS report_date FROM supplier_payments GROUP BY supplier_id, ds",
    ),
    DailyTable(
        "clickstream_errors_daily",
        ("clickstream",),
        (
            ("service", "text"),
            ("event_count", "bigint"),
            ("error_count", "bigint"),
            ("error_rate", "numeric(9,6)"),
            ("report_date", "date"),
        ),
        ("report_date", "service"),
        # The share of a service's clickstream events that are ERROR events, rounded half up to 6 decimals.
        f"SELECT service, count(*) AS event_count, count_if(event_type = '{ERROR}') AS error_count, "
        f"CAST(round(CAST(count_if(event_type = '{ERROR}') AS DECIMAL(20,0)) / count(*), 6) AS DECIMAL(9,6)) "
        "AS error_rate, ds AS report_date FROM clickstream GROUP BY service, ds",
    ),
)
