-- One row per shop application event (deduplicated by event id).
with events as (
    {{ first_copy_per_event(source('raw', 'clickstream')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    event_type,
    level as log_level,
    service,
    user_id as customer_id,
    session_id,
    product_id,
    session_duration_seconds,
    device_type
from events
