-- analytics.country_views_daily as written by the Spark job daily_aggregates.
select
    report_date,
    store_id,
    view_count,
    unique_visitors
from {{ source('analytics', 'country_views_daily') }}
