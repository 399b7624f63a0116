-- Delivery performance per route: shipments, deliveries, the on-time rate of delivered shipments, days late and
-- the most frequent delay reason.
with reasons as (
    select
        route_id,
        delay_reason,
        count(distinct shipment_id) as shipment_count
    from {{ ref('stg_shipment_events') }}
    where delay_reason is not null
    group by route_id, delay_reason
),

top_reason as (
    select distinct on (route_id)
        route_id,
        delay_reason
    from reasons
    order by route_id asc, shipment_count desc, delay_reason asc
),

routes as (
    select
        route_id,
        count(*) as shipment_count,
        count(*) filter (where is_delivered) as delivered_count,
        count(*) filter (where is_on_time) as on_time_count,
        count(*) filter (where not is_on_time) as late_count,
        count(*) filter (where was_delayed) as delayed_shipment_count,
        avg(days_late) as average_days_late,
        max(days_late) as max_days_late
    from {{ ref('fct_shipments') }}
    group by route_id
)

select
    routes.route_id::text as route_id,
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
left join top_reason on routes.route_id = top_reason.route_id
