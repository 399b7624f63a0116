-- Near-real-time revenue per store, currency and hour, rolled up from the Flink job's 5-minute windows
-- (streaming.store_order_revenue_5m): the dashboards' view before the daily batch has run.
select
    store_id::text as store_id,
    currency::text as currency,
    date_trunc('hour', window_start, 'UTC')::timestamptz as hour_start,
    count(*)::bigint as window_count,
    sum(order_count)::bigint as order_count,
    sum(item_count)::bigint as item_count,
    sum(revenue)::numeric(20, 2) as revenue,
    max(window_end)::timestamptz as last_window_end
from {{ ref('stg_streaming__store_order_revenue_5m') }}
group by store_id, currency, date_trunc('hour', window_start, 'UTC')
