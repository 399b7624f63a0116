{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='order_id',
        on_schema_change='fail'
    )
}}

-- One row per order: its latest event (status, ship date), its PLACED event (placement time, total, units) and its
-- span. Incremental: a run rebuilds the orders with an event within `orders_lookback_days` before the latest event
-- already loaded (late arrivals included) from all their events, and merges them on order_id.
with touched as (
    select distinct order_id
    from {{ ref('stg_orders') }}
    {% if is_incremental() %}
        where
            event_time > (
                select coalesce(max(loaded.last_event_at), '-infinity'::timestamptz)
                from {{ this }} as loaded
            ) - interval '{{ var("orders_lookback_days") }} days'
    {% endif %}
),

events as (
    select
        orders.*,
        (
            select coalesce(sum((item.value ->> 'quantity')::integer), 0)
            from jsonb_array_elements(orders.line_items) as item
        ) as item_count,
        row_number() over (
            partition by orders.order_id order by orders.event_time desc, orders.event_id desc
        ) as recency
    from {{ ref('stg_orders') }} as orders
    inner join touched on orders.order_id = touched.order_id
),

placed as (
    select distinct on (order_id)
        order_id,
        event_time as placed_at,
        order_total as placed_total,
        item_count as placed_item_count
    from events
    where order_status = 'PLACED'
    order by order_id asc, event_time asc
),

spans as (
    select
        order_id,
        min(event_time) as first_event_at,
        max(event_time) as last_event_at,
        count(*) as event_count
    from events
    group by order_id
)

select
    latest.order_id,
    latest.customer_id,
    latest.store_id,
    latest.currency,
    latest.order_status,
    latest.order_date,
    latest.ship_date,
    latest.due_date,
    latest.order_total,
    latest.item_count,
    placed.placed_at,
    placed.placed_total,
    placed.placed_item_count,
    spans.first_event_at,
    spans.last_event_at,
    spans.event_count,
    (placed.placed_at at time zone 'UTC')::date as placed_date
from events as latest
inner join spans on latest.order_id = spans.order_id
left join placed on latest.order_id = placed.order_id
where latest.recency = 1
