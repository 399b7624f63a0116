-- One row per product view (deduplicated by event id).
with events as (
    {{ first_copy_per_event(source('raw', 'product_views')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    product_id,
    device_id,
    store_id,
    referrer_url,
    (event_time at time zone 'UTC')::date as view_date
from events
