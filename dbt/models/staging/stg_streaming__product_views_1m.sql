-- 1-minute product view windows of the Flink job, window bounds as UTC timestamps with zone.
select
    window_start at time zone 'UTC' as window_start,
    window_end at time zone 'UTC' as window_end,
    product_id,
    view_count,
    unique_visitors,
    last_view_time at time zone 'UTC' as last_view_time
from {{ source('streaming', 'product_views_1m') }}
