-- 1-minute service error rate windows of the Flink job, window bounds as UTC timestamps with zone.
select
    window_start at time zone 'UTC' as window_start,
    window_end at time zone 'UTC' as window_end,
    service,
    event_count,
    error_count,
    error_rate
from {{ source('streaming', 'service_error_rate_1m') }}
