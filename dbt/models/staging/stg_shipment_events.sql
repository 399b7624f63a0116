-- One row per shipment event (deduplicated by event id).
with events as (
    {{ first_copy_per_event(source('raw', 'shipment_events')) }}
)

select
    event_id,
    event_time,
    ingest_time,
    shipment_id,
    order_id,
    sequence_number,
    status as shipment_status,
    route_id,
    carrier,
    warehouse_id,
    customer_id,
    transport_mode,
    estimated_delivery_date,
    actual_delivery_date,
    delay_reason,
    currency,
    shipment_cost,
    revenue_generated,
    delivery_penalty
from events
