-- One row per shipment: its status timeline (first time in each status), the promise and the delivery, the on-time
-- flag (delivered no later than the promised date; null until delivered), days late and the delay reasons reported.
with events as (
    select
        *,
        row_number() over (
            partition by shipment_id order by sequence_number desc, event_time desc
        ) as recency,
        row_number() over (
            partition by shipment_id order by sequence_number asc, event_time asc
        ) as step
    from {{ ref('stg_shipment_events') }}
),

timeline as (
    select
        shipment_id,
        min(event_time) as first_event_at,
        max(event_time) as last_event_at,
        count(*) as event_count,
        min(event_time) filter (where shipment_status = 'PENDING') as pending_at,
        min(event_time) filter (where shipment_status = 'IN_TRANSIT') as in_transit_at,
        min(event_time) filter (where shipment_status = 'DELAYED') as first_delayed_at,
        min(event_time) filter (where shipment_status = 'DELIVERED') as delivered_at,
        count(*) filter (where shipment_status = 'DELAYED') as delay_event_count,
        max(actual_delivery_date) as actual_delivery_date,
        string_agg(distinct delay_reason, ',' order by delay_reason) as delay_reasons
    from events
    group by shipment_id
),

booking as (
    select
        shipment_id,
        order_id,
        route_id,
        carrier,
        warehouse_id,
        customer_id,
        estimated_delivery_date
    from events
    where step = 1
),

latest as (
    select
        shipment_id,
        shipment_status,
        currency,
        shipment_cost,
        revenue_generated,
        delivery_penalty
    from events
    where recency = 1
)

select
    booking.shipment_id,
    booking.order_id,
    booking.route_id,
    booking.carrier,
    booking.warehouse_id,
    booking.customer_id,
    latest.shipment_status as current_status,
    timeline.first_event_at,
    timeline.pending_at,
    timeline.in_transit_at,
    timeline.first_delayed_at,
    timeline.delivered_at,
    timeline.last_event_at,
    timeline.event_count,
    booking.estimated_delivery_date,
    timeline.actual_delivery_date,
    timeline.delivered_at is not null as is_delivered,
    timeline.delay_event_count > 0 as was_delayed,
    timeline.delay_reasons,
    latest.currency,
    latest.shipment_cost,
    latest.revenue_generated,
    latest.delivery_penalty,
    case
        when timeline.actual_delivery_date is null then null
        else timeline.actual_delivery_date <= booking.estimated_delivery_date
    end as is_on_time,
    case
        when timeline.actual_delivery_date is null then null
        else greatest(timeline.actual_delivery_date - booking.estimated_delivery_date, 0)
    end as days_late
from booking
inner join timeline on booking.shipment_id = timeline.shipment_id
inner join latest on booking.shipment_id = latest.shipment_id
