"""The daily tables (pure: Spark SQL text and PostgreSQL DDL, no Spark here).

Each query runs over temporary views named after the raw families (``product_views``, ``orders``, ...) holding one
day's clean rows (contract invariants met, one row per event id) as read from the lake's Avro files, and yields the
table's rows for that day (``report_date``).
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECT = "(direct)"  # referrer_views_daily's referrer_url for views without a referrer (direct traffic)
PLACED = "PLACED"


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
)
