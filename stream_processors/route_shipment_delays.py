"""Shipment delays per route per 1-hour event-time tumbling window.

``logistics.shipment_events.v1`` -> ``aggregates.route_shipment_delays.v1`` (Avro through the registry, exactly
once) and ``streaming.route_shipment_delays_1h`` in PostgreSQL (idempotent upserts, primary key window + route). Per
window: shipment events, distinct shipments, shipments reported DELAYED (and the rate), delayed shipments per delay
reason (every ``DelayReason`` symbol, 0 when none), shipments reported DELIVERED and their mean and largest delay
against the promised date (days after ``estimated_delivery_date``, 0 when on time or early).

Two cascaded window aggregations: per route, shipment and hour first (so a shipment counts once however many events
it has in the window; its reason is the greatest symbol of its DELAYED events there), then per route and hour, on
the first one's ``window_time`` (renamed ``shipment_hour``: the second adds its own). The reasons' map goes to Kafka
as the contract's Avro map and to PostgreSQL as a ``jsonb`` object (the JDBC connector writes no map type; JSON
keeps one row per window, queryable with ``->>``). The job reads the fields it uses only (a projection of the
contract as Avro reader schema: Flink's ``avro-confluent`` format rejects the contract's nullable nested record
``current_location``). Event time, watermark and late data as in ``product_views``.

Run on the session cluster with ``freightline flink submit route_shipment_delays``; settings
``ROUTE_SHIPMENT_DELAYS_JOB_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from stream_processors.flink_sql import WINDOW_COLUMNS, WarehouseColumn, WindowJob, WindowJobSettings

# the symbols of com.freightline.logistics.DelayReason, in contract order (a unit test holds them to the contract)
DELAY_REASONS = ("WEATHER", "CUSTOMS", "TRAFFIC", "OTHER")


class RouteShipmentDelaysJobSettings(WindowJobSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTE_SHIPMENT_DELAYS_JOB_", extra="ignore", case_sensitive=False)

    source_topic: str = Field(default=topics.SHIPMENT_EVENTS, description="ROUTE_SHIPMENT_DELAYS_JOB_SOURCE_TOPIC.")
    sink_topic: str = Field(
        default=topics.AGGREGATES_ROUTE_SHIPMENT_DELAYS, description="ROUTE_SHIPMENT_DELAYS_JOB_SINK_TOPIC."
    )
    postgres_table: str = Field(
        default="streaming.route_shipment_delays_1h", description="ROUTE_SHIPMENT_DELAYS_JOB_POSTGRES_TABLE."
    )
    group_id: str = Field(default="flink-route-shipment-delays", description="ROUTE_SHIPMENT_DELAYS_JOB_GROUP_ID.")


def _per_reason(reason: str) -> str:
    return f"CAST(SUM(CASE WHEN `reason` = '{reason}' THEN 1 ELSE 0 END) AS BIGINT)"


_MAP = ", ".join(f"CAST('{reason}' AS STRING), {_per_reason(reason)}" for reason in DELAY_REASONS)
_JSON = ", ".join(f"KEY '{reason}' VALUE {_per_reason(reason)}" for reason in DELAY_REASONS)

JOB = WindowJob(
    name="route_shipment_delays_1h",
    producer="flink-route-shipment-delays",
    source_contract=topics.SHIPMENT_EVENTS,
    sink_contract=topics.AGGREGATES_ROUTE_SHIPMENT_DELAYS,
    key=("route_id",),
    # what the windows use: Flink's Avro format does not accept the contract's nullable record (current_location)
    source_fields=(
        "metadata.event_id",
        "metadata.event_time",
        "shipment_id",
        "status",
        "route_id",
        "estimated_delivery_date",
        "actual_delivery_date",
        "delay_reason",
    ),
    views=(
        (
            "shipment_windows",
            """SELECT
  `route_id`, `shipment_id`, `window_time` AS `shipment_hour`,
  COUNT(*) AS `events`,
  MAX(CASE WHEN `status` = 'DELAYED' THEN 1 ELSE 0 END) AS `delayed`,
  MAX(CASE WHEN `status` = 'DELAYED' THEN `delay_reason` END) AS `reason`,
  MAX(CASE WHEN `status` = 'DELIVERED' THEN 1 ELSE 0 END) AS `delivered`,
  MAX(CASE WHEN `status` = 'DELIVERED' AND `actual_delivery_date` IS NOT NULL THEN GREATEST(TIMESTAMPDIFF(DAY,
    CAST(`estimated_delivery_date` AS TIMESTAMP(3)), CAST(`actual_delivery_date` AS TIMESTAMP(3))), 0) END)
    AS `delay_days`
FROM TABLE(TUMBLE(TABLE `source`, DESCRIPTOR(`event_time`), INTERVAL '1' HOUR))
GROUP BY `route_id`, `shipment_id`, `window_start`, `window_end`, `window_time`""",
        ),
    ),
    windows=f"""SELECT
  `route_id`, `window_start`, `window_end`,
  SUM(`events`) AS `event_count`,
  COUNT(*) AS `shipment_count`,
  CAST(SUM(`delayed`) AS BIGINT) AS `delayed_shipment_count`,
  CAST(SUM(`delayed`) AS DOUBLE) / COUNT(*) AS `delay_rate`,
  MAP[{_MAP}] AS `delays_by_reason`,
  JSON_OBJECT({_JSON}) AS `delays_by_reason_json`,
  CAST(SUM(`delivered`) AS BIGINT) AS `delivered_shipment_count`,
  COALESCE(CAST(SUM(`delay_days`) AS DOUBLE) / NULLIF(SUM(`delivered`), 0), CAST(0 AS DOUBLE)) AS `mean_delay_days`,
  COALESCE(CAST(MAX(`delay_days`) AS BIGINT), CAST(0 AS BIGINT)) AS `max_delay_days`
FROM TABLE(TUMBLE(TABLE `shipment_windows`, DESCRIPTOR(`shipment_hour`), INTERVAL '1' HOUR))
GROUP BY `route_id`, `window_start`, `window_end`""",
    fields=(
        "route_id",
        "window_start",
        "window_end",
        "event_count",
        "shipment_count",
        "delayed_shipment_count",
        "delay_rate",
        "delays_by_reason",
        "delivered_shipment_count",
        "mean_delay_days",
        "max_delay_days",
    ),
    window_minutes=60,
    warehouse=(
        *WINDOW_COLUMNS,
        WarehouseColumn("route_id", "STRING", "text"),
        WarehouseColumn("event_count", "BIGINT", "bigint"),
        WarehouseColumn("shipment_count", "BIGINT", "bigint"),
        WarehouseColumn("delayed_shipment_count", "BIGINT", "bigint"),
        WarehouseColumn("delay_rate", "DOUBLE", "double precision"),
        WarehouseColumn("delays_by_reason", "STRING", "jsonb", expression="`delays_by_reason_json`"),
        WarehouseColumn("delivered_shipment_count", "BIGINT", "bigint"),
        WarehouseColumn("mean_delay_days", "DOUBLE", "double precision"),
        WarehouseColumn("max_delay_days", "BIGINT", "bigint"),
    ),
)


def main() -> None:
    JOB.submit(RouteShipmentDelaysJobSettings())


if __name__ == "__main__":
    main()
