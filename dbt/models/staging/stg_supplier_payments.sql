-- One row per supplier payment event (deduplicated by event id).
with events as (
    {{ first_copy_per_event(source('raw', 'supplier_payments')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    payment_id,
    invoice_id,
    supplier_id,
    amount,
    currency,
    payment_method,
    due_date,
    paid_date,
    payment_delay_days
from events
