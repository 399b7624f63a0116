-- Orders placed, units and revenue per store, currency and UTC day of placement (the daily revenue report).
select
    store_id::text as store_id,
    currency::text as currency,
    placed_date::date as revenue_date,
    count(*)::bigint as order_count,
    sum(placed_item_count)::bigint as item_count,
    sum(placed_total)::numeric(20, 2) as revenue
from {{ ref('fct_orders') }}
where placed_at is not null
group by store_id, currency, placed_date
