-- analytics.referrer_views_daily as written by the Spark job daily_aggregates.
select
    report_date,
    referrer_url,
    view_count
from {{ source('analytics', 'referrer_views_daily') }}
