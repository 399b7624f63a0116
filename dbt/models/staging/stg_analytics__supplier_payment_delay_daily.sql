-- analytics.supplier_payment_delay_daily as written by the Spark job daily_aggregates.
select
    report_date,
    supplier_id,
    payment_count,
    total_delay_days,
    max_delay_days,
    avg_delay_days
from {{ source('analytics', 'supplier_payment_delay_daily') }}
