"""Product views per product per 1-minute event-time tumbling window.

``web.product_views.v1`` -> ``aggregates.product_views.v1`` (Avro through the registry, exactly once) and
``streaming.product_views_1m`` in PostgreSQL (idempotent upserts, primary key window + product). Per window: the
number of views, the unique visitors (distinct devices) and the event time of the latest view. Event time is
``metadata.event_time``; the watermark trails the largest event time by ``max_out_of_orderness_ms``; a window is
emitted once the watermark passes its end, and a view arriving after that is dropped (the late-events output is
not written yet).

Run on the session cluster with ``freightline flink submit product_views``; settings ``PRODUCT_VIEWS_JOB_*``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from schemas.catalogue import load_catalogue, schema_text
from services.common.settings import KafkaSettings, PostgresSettings, SchemaRegistrySettings
from stream_processors.flink_sql import (
    WindowJobSettings,
    jdbc_upsert_sink,
    job_config,
    kafka_sink,
    kafka_source,
    quote,
    run,
)

JOB_NAME = "product_views_1m"
PRODUCER = "flink-product-views"
WINDOW = "INTERVAL '1' MINUTE"


class ProductViewsJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCT_VIEWS_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(default=topics.PRODUCT_VIEWS, description="PRODUCT_VIEWS_JOB_SOURCE_TOPIC.")
    sink_topic: str = Field(default=topics.AGGREGATES_PRODUCT_VIEWS, description="PRODUCT_VIEWS_JOB_SINK_TOPIC.")
    postgres_table: str = Field(default="streaming.product_views_1m", description="PRODUCT_VIEWS_JOB_POSTGRES_TABLE.")
    group_id: str = Field(default="flink-product-views", description="PRODUCT_VIEWS_JOB_GROUP_ID.")


def postgres_ddl(table: str) -> str:
    """The upsert target (idempotent DDL); timestamps are UTC."""
    schema = table.split(".")[0] if "." in table else "public"
    return (
        f"CREATE SCHEMA IF NOT EXISTS {schema};\n"
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "  window_start timestamp(3) NOT NULL,\n"
        "  window_end timestamp(3) NOT NULL,\n"
        "  product_id text NOT NULL,\n"
        "  view_count bigint NOT NULL,\n"
        "  unique_visitors bigint NOT NULL,\n"
        "  last_view_time timestamp(3) NOT NULL,\n"
        "  PRIMARY KEY (window_start, window_end, product_id)\n"
        ");"
    )


def window_event_id(product_id: str, window_start: datetime) -> str:
    """The aggregate's event id, as the job computes it: MD5 of ``<product>|<window start>`` shaped as a
    version-3 (name-based, MD5) UUID, so a window emitted again keeps its id."""
    digest = hashlib.md5(f"{product_id}|{window_start:%Y-%m-%d %H:%M:%S.%f}"[:-3].encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-3{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def statements(
    settings: ProductViewsJobSettings,
    kafka: KafkaSettings,
    registry: SchemaRegistrySettings,
    postgres: PostgresSettings,
) -> tuple[list[str], list[str]]:
    """(table and view definitions, inserts) of the job."""
    catalogue = load_catalogue()
    source_schema = schema_text(catalogue.topic(topics.PRODUCT_VIEWS).value_schema)
    sink_schema = schema_text(catalogue.topic(topics.AGGREGATES_PRODUCT_VIEWS).value_schema)
    windows = f"""CREATE TEMPORARY VIEW `windows` AS
SELECT
  `product_id`, `window_start`, `window_end`,
  COUNT(*) AS `view_count`,
  COUNT(DISTINCT `device_id`) AS `unique_visitors`,
  MAX(`event_time`) AS `last_view_time`
FROM TABLE(TUMBLE(TABLE `views`, DESCRIPTOR(`event_time`), {WINDOW}))
GROUP BY `product_id`, `window_start`, `window_end`"""
    # CAST(window_start AS STRING) is 'YYYY-MM-DD HH:MM:SS.mmm', as window_event_id formats it
    digest = "MD5(CONCAT(`product_id`, '|', CAST(`window_start` AS STRING)))"
    event_id = (
        "CONCAT(SUBSTRING(h, 1, 8), '-', SUBSTRING(h, 9, 4), '-3', SUBSTRING(h, 14, 3), '-8', "
        "SUBSTRING(h, 18, 3), '-', SUBSTRING(h, 21, 12))"
    )
    definitions = [
        kafka_source("views", settings, kafka, registry, source_schema, "`metadata`.`event_time`"),
        kafka_sink("aggregates", settings, kafka, registry, sink_schema, "product_id"),
        jdbc_upsert_sink(
            "warehouse",
            settings.postgres_table,
            [
                "`window_start` TIMESTAMP(3) NOT NULL",
                "`window_end` TIMESTAMP(3) NOT NULL",
                "`product_id` STRING NOT NULL",
                "`view_count` BIGINT NOT NULL",
                "`unique_visitors` BIGINT NOT NULL",
                "`last_view_time` TIMESTAMP(3) NOT NULL",
            ],
            ["window_start", "window_end", "product_id"],
            postgres.dsn,
        ),
        windows,
    ]
    inserts = [
        f"""INSERT INTO `aggregates`
SELECT
  ROW({event_id}, `window_end`, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), {quote(PRODUCER)}, CAST(NULL AS STRING)),
  `product_id`, `window_start`, `window_end`, `view_count`, `unique_visitors`, `last_view_time`
FROM (SELECT *, {digest} AS h FROM `windows`)""",
        """INSERT INTO `warehouse`
SELECT `window_start`, `window_end`, `product_id`, `view_count`, `unique_visitors`, `last_view_time`
FROM `windows`""",
    ]
    return definitions, inserts


def main() -> None:
    """Entrypoint on the cluster's client (``flink run -py``): build the job from the environment and submit it."""
    settings = ProductViewsJobSettings()
    definitions, inserts = statements(settings, KafkaSettings(), SchemaRegistrySettings(), PostgresSettings())
    job_id = run(job_config(settings, JOB_NAME), definitions, inserts)
    print(f"submitted {JOB_NAME} as job {job_id}", flush=True)


if __name__ == "__main__":
    main()
