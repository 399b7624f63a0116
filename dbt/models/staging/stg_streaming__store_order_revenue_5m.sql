-- 5-minute store revenue windows of the Flink job, window bounds as UTC timestamps with zone.
select
    window_start at time zone 'UTC' as window_start,
    window_end at time zone 'UTC' as window_end,
    store_id,
    currency,
    order_count,
    item_count,
    revenue
from {{ source('streaming', 'store_order_revenue_5m') }}
