-- analytics.clickstream_errors_daily as written by the Spark job daily_aggregates.
select
    report_date,
    service,
    event_count,
    error_count,
    error_rate
from {{ source('analytics', 'clickstream_errors_daily') }}
