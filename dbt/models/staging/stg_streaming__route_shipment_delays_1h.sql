-- 1-hour route delay windows of the Flink job, window bounds as UTC timestamps with zone.
select
    window_start at time zone 'UTC' as window_start,
    window_end at time zone 'UTC' as window_end,
    route_id,
    event_count,
    shipment_count,
    delayed_shipment_count,
    delay_rate,
    delays_by_reason,
    delivered_shipment_count,
    mean_delay_days,
    max_delay_days
from {{ source('streaming', 'route_shipment_delays_1h') }}
