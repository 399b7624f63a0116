-- The lines of each order event, one row per line (unnested from the event's line_items).
select
    orders.event_id,
    orders.order_id,
    orders.order_status,
    orders.event_time,
    orders.currency,
    (item.value ->> 'line_number')::integer as line_number,
    item.value ->> 'product_id' as product_id,
    (item.value ->> 'quantity')::integer as quantity,
    (item.value ->> 'price')::numeric(18, 2) as price,
    (item.value ->> 'sales_amount')::numeric(18, 2) as sales_amount
from {{ ref('stg_orders') }} as orders
cross join lateral jsonb_array_elements(orders.line_items) as item
