-- Delivery performance per route and carrier: shipments, deliveries, the on-time rate of delivered shipments, days
-- late and the most frequent delay reason.
with reasons as (
    select
        shipments.route_id,
        shipments.carrier,
        events.delay_reason,
        count(distinct events.shipment_id) as shipment_count
    from {{ ref('stg_shipment_events') }} as events
    inner join {{ ref('fct_shipments') }} as shipments on events.shipment_id = shipments.shipment_id
    where events.delay_reason is not null
    group by shipments.route_id, shipments.carrier, events.delay_reason
),

top_reason as (
    select distinct on (route_id, carrier)
        route_id,
        carrier,
        delay_reason
    from reasons
    order by route_id asc, carrier asc, shipment_count desc, delay_reason asc
),

routes as (
    select
        route_id,
        carrier,
        count(*) as shipment_count,
        count(*) filter (where is_delivered) as delivered_count,
        count(*) filter (where is_on_time) as on_time_count,
        count(*) filter (where not is_on_time) as late_count,
        count(*) filter (where was_delayed) as delayed_shipment_count,
        avg(days_late) as average_days_late,
        max(days_late) as max_days_late
    from {{ ref('fct_shipments') }}
    group by route_id, carrier
)

select
    routes.route_id::text as route_id,
    routes.carrier::text as carrier,
    routes.shipment_count::bigint as shipment_count,
    routes.delivered_count::bigint as delivered_count,
    routes.on_time_count::bigint as on_time_count,
    routes.late_count::bigint as late_count,
    round(routes.on_time_count::numeric / nullif(routes.delivered_count, 0), 4)::numeric(6, 4) as on_time_rate,
    routes.delayed_shipment_count::bigint as delayed_shipment_count,
    round(routes.average_days_late, 2)::numeric(10, 2) as average_days_late,
    routes.max_days_late::integer as max_days_late,
    top_reason.delay_reason::text as top_delay_reason
from routes
left join top_reason on routes.route_id = top_reason.route_id and routes.carrier = top_reason.carrier
