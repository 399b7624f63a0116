-- One row per supplier invoice event (deduplicated by event id).
with events as (
    {{ first_copy_per_event(source('raw', 'supplier_invoices')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    invoice_id,
    supplier_id,
    status as invoice_status,
    issue_date,
    due_date,
    amount,
    currency
from events
