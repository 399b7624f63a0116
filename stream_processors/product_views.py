"""Product views per product per 1-minute event-time tumbling window.

``web.product_views.v1`` -> ``aggregates.product_views.v1`` (Avro through the registry, exactly once) and
``streaming.product_views_1m`` in PostgreSQL (idempotent upserts, primary key window + product). Per window: the
number of views, the unique visitors (distinct devices) and the event time of the latest view. Event time is
``metadata.event_time``; the watermark trails the largest event time by ``max_out_of_orderness_ms``; a window is
emitted once the watermark passes its end; a view arriving after that is written to ``aggregates.late_events.v1``
instead.

Run on the session cluster with ``freightline flink submit product_views``; settings ``PRODUCT_VIEWS_JOB_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from stream_processors.flink_sql import WINDOW_COLUMNS, WarehouseColumn, WindowJob, WindowJobSettings


class ProductViewsJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCT_VIEWS_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(default=topics.PRODUCT_VIEWS, description="PRODUCT_VIEWS_JOB_SOURCE_TOPIC.")
    sink_topic: str = Field(default=topics.AGGREGATES_PRODUCT_VIEWS, description="PRODUCT_VIEWS_JOB_SINK_TOPIC.")
    postgres_table: str = Field(default="streaming.product_views_1m", description="PRODUCT_VIEWS_JOB_POSTGRES_TABLE.")
    group_id: str = Field(default="flink-product-views", description="PRODUCT_VIEWS_JOB_GROUP_ID.")


JOB = WindowJob(
    name="product_views_1m",
    producer="flink-product-views",
    source_contract=topics.PRODUCT_VIEWS,
    sink_contract=topics.AGGREGATES_PRODUCT_VIEWS,
    key=("product_id",),
    # what the windows and the late events use: the other fields are skipped by the Avro reader, not decoded
    source_fields=("metadata.event_id", "metadata.event_time", "product_id", "device_id"),
    windows="""SELECT
  `product_id`, `window_start`, `window_end`,
  COUNT(*) AS `view_count`,
  COUNT(DISTINCT `device_id`) AS `unique_visitors`,
  MAX(`event_time`) AS `last_view_time`
FROM TABLE(TUMBLE(TABLE `source`, DESCRIPTOR(`event_time`), INTERVAL '1' MINUTE))
GROUP BY `product_id`, `window_start`, `window_end`""",
    fields=("product_id", "window_start", "window_end", "view_count", "unique_visitors", "last_view_time"),
    window_minutes=1,
    warehouse=(
        *WINDOW_COLUMNS,
        WarehouseColumn("product_id", "STRING", "text"),
        WarehouseColumn("view_count", "BIGINT", "bigint"),
        WarehouseColumn("unique_visitors", "BIGINT", "bigint"),
        WarehouseColumn("last_view_time", "TIMESTAMP(3)", "timestamp(3)"),
    ),
)


def main() -> None:
    JOB.submit(ProductViewsJobSettings())


if __name__ == "__main__":
    main()
