"""The ten most viewed products per product category per 10-minute event-time hopping window (sliding by 5 minutes):
a window Top-N in Flink SQL.

``enriched.product_views.v1`` -> ``aggregates.category_top_products.v1`` (Avro through the registry, exactly once,
one record per category, window and ranked product) and ``streaming.category_rankings_10m`` in PostgreSQL
(idempotent upserts, primary key window + category + rank: Flink's own unique key of a Top-N with its row number, so
a later computation of the same window over other events, such as a main job run on a used stack, replaces the
window's ranking rank by rank instead of adding its products beside the earlier ones). Per ranked product: its rank
(1 = most viewed; ties broken by product id), views and unique visitors (distinct devices).

The category is the product's reference category that the enrichment attached to the view
(``EnrichedProductView.product.category``): the raw product view carries the product id only, and the enriched view
is where the platform joins it with ``reference.products``. Views of products the enrichment did not know (status
``UNKNOWN``, category null) are ranked in no category and never reported late. A window aggregation per category,
product and window (``HOP``), then ``ROW_NUMBER()`` over each window's category, kept up to 10: Flink's window
Top-N, which emits each window's ranking once, when the window closes (insert-only). The job reads the fields it
uses only (the store's attributes are not needed). Event time is the enriched record's ``metadata.event_time`` (the
source view's); watermark and late data as in ``product_views``, the late window being the last of an event's two.

Run on the session cluster with ``freightline flink submit category_top_products``; settings
``CATEGORY_TOP_PRODUCTS_JOB_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from stream_processors.flink_sql import WINDOW_COLUMNS, WarehouseColumn, WindowJob, WindowJobSettings

TOP = 10
WINDOW_MINUTES = 10
SLIDE_MINUTES = 5


class CategoryTopProductsJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="CATEGORY_TOP_PRODUCTS_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(
        default=topics.ENRICHED_PRODUCT_VIEWS, description="CATEGORY_TOP_PRODUCTS_JOB_SOURCE_TOPIC."
    )
    sink_topic: str = Field(
        default=topics.AGGREGATES_CATEGORY_TOP_PRODUCTS, description="CATEGORY_TOP_PRODUCTS_JOB_SINK_TOPIC."
    )
    postgres_table: str = Field(
        default="streaming.category_rankings_10m", description="CATEGORY_TOP_PRODUCTS_JOB_POSTGRES_TABLE."
    )
    group_id: str = Field(default="flink-category-top-products", description="CATEGORY_TOP_PRODUCTS_JOB_GROUP_ID.")


JOB = WindowJob(
    name="category_top_products_10m",
    producer="flink-category-top-products",
    source_contract=topics.ENRICHED_PRODUCT_VIEWS,
    sink_contract=topics.AGGREGATES_CATEGORY_TOP_PRODUCTS,
    key=("category", "product_id"),
    warehouse_key=("category", "rank"),
    source_fields=(
        "metadata.event_id",
        "metadata.event_time",
        "event.product_id",
        "event.device_id",
        "product.category",
    ),
    views=(
        (
            "category_views",
            """SELECT
  `metadata`, `event_time`, `product`.`category` AS `category`, `event`.`product_id` AS `product_id`,
  `event`.`device_id` AS `device_id`
FROM `source`
WHERE `product`.`category` IS NOT NULL""",
        ),
    ),
    windows=f"""SELECT
  `category`, `product_id`, `window_start`, `window_end`, CAST(`row_number` AS INT) AS `rank`, `view_count`,
  `unique_visitors`
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY `window_start`, `window_end`, `category` ORDER BY `view_count` DESC, `product_id` ASC
  ) AS `row_number`
  FROM (
    SELECT
      `category`, `product_id`, `window_start`, `window_end`,
      COUNT(*) AS `view_count`,
      COUNT(DISTINCT `device_id`) AS `unique_visitors`
    FROM TABLE(HOP(TABLE `category_views`, DESCRIPTOR(`event_time`), INTERVAL '{SLIDE_MINUTES}' MINUTE,
      INTERVAL '{WINDOW_MINUTES}' MINUTE))
    GROUP BY `category`, `product_id`, `window_start`, `window_end`
  )
)
WHERE `row_number` <= {TOP}""",
    fields=("category", "window_start", "window_end", "rank", "product_id", "view_count", "unique_visitors"),
    window_minutes=WINDOW_MINUTES,
    slide_minutes=SLIDE_MINUTES,
    late_source="category_views",
    warehouse=(
        *WINDOW_COLUMNS,
        WarehouseColumn("category", "STRING", "text"),
        WarehouseColumn("product_id", "STRING", "text"),
        WarehouseColumn("rank", "INT", "integer"),
        WarehouseColumn("view_count", "BIGINT", "bigint"),
        WarehouseColumn("unique_visitors", "BIGINT", "bigint"),
    ),
)


def main() -> None:
    JOB.submit(CategoryTopProductsJobSettings())


if __name__ == "__main__":
    main()
