"""Error rate per shop service per 1-minute event-time tumbling window, from the clickstream (application log).

``web.clickstream.v1`` -> ``aggregates.service_error_rate.v1`` (Avro through the registry, exactly once) and
``streaming.service_error_rate_1m`` in PostgreSQL (idempotent upserts, primary key window + service). Per window:
the events the service logged, the errors among them (level ``ERROR`` or ``CRITICAL``: the log severity, whatever
the event type) and their rate. The job reads the fields it uses only (a projection of the contract as Avro reader
schema: the contract's ``details``, a union of several records, has no Flink SQL type). Event time, watermark and
late data as in ``product_views``.

Run on the session cluster with ``freightline flink submit service_error_rate``; settings
``SERVICE_ERROR_RATE_JOB_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from stream_processors.flink_sql import WINDOW_COLUMNS, WarehouseColumn, WindowJob, WindowJobSettings

# the LogLevel symbols that count as errors
ERROR_LEVELS = ("ERROR", "CRITICAL")


class ServiceErrorRateJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_ERROR_RATE_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(default=topics.CLICKSTREAM, description="SERVICE_ERROR_RATE_JOB_SOURCE_TOPIC.")
    sink_topic: str = Field(
        default=topics.AGGREGATES_SERVICE_ERROR_RATE, description="SERVICE_ERROR_RATE_JOB_SINK_TOPIC."
    )
    postgres_table: str = Field(
        default="streaming.service_error_rate_1m", description="SERVICE_ERROR_RATE_JOB_POSTGRES_TABLE."
    )
    group_id: str = Field(default="flink-service-error-rate", description="SERVICE_ERROR_RATE_JOB_GROUP_ID.")


_ERROR = f"CASE WHEN `level` IN ({', '.join(repr(level) for level in ERROR_LEVELS)}) THEN 1 ELSE 0 END"

JOB = WindowJob(
    name="service_error_rate_1m",
    producer="flink-service-error-rate",
    source_contract=topics.CLICKSTREAM,
    sink_contract=topics.AGGREGATES_SERVICE_ERROR_RATE,
    key=("service",),
    source_fields=("metadata.event_id", "metadata.event_time", "event_type", "level", "service"),
    windows=f"""SELECT
  `service`, `window_start`, `window_end`,
  COUNT(*) AS `event_count`,
  CAST(SUM({_ERROR}) AS BIGINT) AS `error_count`,
  CAST(SUM({_ERROR}) AS DOUBLE) / COUNT(*) AS `error_rate`
FROM TABLE(TUMBLE(TABLE `source`, DESCRIPTOR(`event_time`), INTERVAL '1' MINUTE))
GROUP BY `service`, `window_start`, `window_end`""",
    fields=("service", "window_start", "window_end", "event_count", "error_count", "error_rate"),
    window_minutes=1,
    warehouse=(
        *WINDOW_COLUMNS,
        WarehouseColumn("service", "STRING", "text"),
        WarehouseColumn("event_count", "BIGINT", "bigint"),
        WarehouseColumn("error_count", "BIGINT", "bigint"),
        WarehouseColumn("error_rate", "DOUBLE", "double precision"),
    ),
)


def main() -> None:
    JOB.submit(ServiceErrorRateJobSettings())


if __name__ == "__main__":
    main()
