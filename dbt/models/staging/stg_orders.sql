-- One row per order event (deduplicated by event id: an at-least-once stage may repeat a record).
with events as (
    {{ first_copy_per_event(source('raw', 'orders')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    order_id,
    customer_id,
    store_id,
    status as order_status,
    order_date,
    ship_date,
    due_date,
    currency,
    order_total,
    line_items,
    (event_time at time zone 'UTC')::date as event_date
from events
