-- analytics.product_views_daily as written by the Spark job daily_aggregates.
select
    report_date,
    product_id,
    view_count,
    unique_visitors,
    last_view_time
from {{ source('analytics', 'product_views_daily') }}
