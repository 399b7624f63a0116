-- The lines of every order as placed (its PLACED event), one row per order and line number.
with placed as (
    select distinct on (order_id)
        event_id,
        order_id
    from {{ ref('stg_orders') }}
    where order_status = 'PLACED'
    order by order_id asc, event_time asc
)

select
    order_line.order_id || '#' || order_line.line_number as order_line_id,
    order_line.order_id,
    order_line.line_number,
    order_line.product_id,
    order_line.quantity,
    order_line.price,
    order_line.sales_amount,
    order_line.currency,
    order_line.event_time as placed_at,
    (order_line.event_time at time zone 'UTC')::date as placed_date
from {{ ref('int_order_lines') }} as order_line
inner join placed on order_line.event_id = placed.event_id
