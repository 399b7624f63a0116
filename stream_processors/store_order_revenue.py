"""Order revenue per store and currency per 5-minute event-time tumbling window, money exact (decimals).

``commerce.orders.v1`` (its ``PLACED`` events) -> ``aggregates.store_order_revenue.v1`` (Avro through the registry,
exactly once) and ``streaming.store_order_revenue_5m`` in PostgreSQL (idempotent upserts, primary key window + store
+ currency). Per window: distinct orders placed, units ordered (the lines' quantities) and revenue, the sum of the
orders' ``order_total`` as DECIMAL(18, 2), never a float. Event time, watermark and late data as in
``product_views``.

Run on the session cluster with ``freightline flink submit store_order_revenue``; settings
``STORE_ORDER_REVENUE_JOB_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from stream_processors.flink_sql import WINDOW_COLUMNS, WarehouseColumn, WindowJob, WindowJobSettings


class StoreOrderRevenueJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="STORE_ORDER_REVENUE_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(default=topics.ORDERS, description="STORE_ORDER_REVENUE_JOB_SOURCE_TOPIC.")
    sink_topic: str = Field(
        default=topics.AGGREGATES_STORE_ORDER_REVENUE, description="STORE_ORDER_REVENUE_JOB_SINK_TOPIC."
    )
    postgres_table: str = Field(
        default="streaming.store_order_revenue_5m", description="STORE_ORDER_REVENUE_JOB_POSTGRES_TABLE."
    )
    group_id: str = Field(default="flink-store-order-revenue", description="STORE_ORDER_REVENUE_JOB_GROUP_ID.")


JOB = WindowJob(
    name="store_order_revenue_5m",
    producer="flink-store-order-revenue",
    source_contract=topics.ORDERS,
    sink_contract=topics.AGGREGATES_STORE_ORDER_REVENUE,
    key=("store_id", "currency"),
    # what the windows and the late events use: the other fields (the lines' products and prices among them) are
    # skipped by the Avro reader, not decoded
    source_fields=(
        "metadata.event_id",
        "metadata.event_time",
        "order_id",
        "store_id",
        "status",
        "currency",
        "line_items.line_number",
        "line_items.quantity",
        "order_total",
    ),
    # one row per line of a placed order; the order's total rides on its first line only, so summing it counts
    # each order once
    views=(
        (
            "placed_lines",
            """SELECT
  o.`store_id`, o.`currency`, o.`order_id`, o.`event_time`, l.`quantity`,
  CASE WHEN l.`line_number` = 1 THEN o.`order_total` ELSE CAST(0 AS DECIMAL(18, 2)) END AS `order_share`
FROM `source` AS o
CROSS JOIN UNNEST(o.`line_items`) AS l (`line_number`, `quantity`)
WHERE o.`status` = 'PLACED'""",
        ),
    ),
    windows="""SELECT
  `store_id`, `currency`, `window_start`, `window_end`,
  COUNT(DISTINCT `order_id`) AS `order_count`,
  SUM(CAST(`quantity` AS BIGINT)) AS `item_count`,
  CAST(SUM(`order_share`) AS DECIMAL(18, 2)) AS `revenue`
FROM TABLE(TUMBLE(TABLE `placed_lines`, DESCRIPTOR(`event_time`), INTERVAL '5' MINUTE))
GROUP BY `store_id`, `currency`, `window_start`, `window_end`""",
    fields=("store_id", "window_start", "window_end", "order_count", "item_count", "revenue", "currency"),
    window_minutes=5,
    late_filter="`status` = 'PLACED'",
    warehouse=(
        *WINDOW_COLUMNS,
        WarehouseColumn("store_id", "STRING", "text"),
        WarehouseColumn("currency", "STRING", "text"),
        WarehouseColumn("order_count", "BIGINT", "bigint"),
        WarehouseColumn("item_count", "BIGINT", "bigint"),
        WarehouseColumn("revenue", "DECIMAL(18, 2)", "numeric(18, 2)"),
    ),
)


def main() -> None:
    JOB.submit(StoreOrderRevenueJobSettings())


if __name__ == "__main__":
    main()
