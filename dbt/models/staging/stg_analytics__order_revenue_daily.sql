-- analytics.order_revenue_daily as written by the Spark job daily_aggregates.
select
    report_date,
    store_id,
    currency,
    order_count,
    item_count,
    revenue
from {{ source('analytics', 'order_revenue_daily') }}
