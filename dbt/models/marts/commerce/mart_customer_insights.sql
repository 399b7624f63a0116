-- Per customer: segment and region, orders placed, revenue (in the customer's store currency), first and last order.
with orders as (
    select
        customer_id,
        min(currency) as currency,
        count(*) as order_count,
        sum(placed_total) as revenue,
        min(placed_at) as first_order_at,
        max(placed_at) as last_order_at
    from {{ ref('fct_orders') }}
    where placed_at is not null
    group by customer_id
)

select
    customers.customer_id::text as customer_id,
    customers.segment::text as segment,
    customers.region::text as region,
    customers.country::text as country,
    orders.currency::text as currency,
    coalesce(orders.order_count, 0)::bigint as order_count,
    coalesce(orders.revenue, 0)::numeric(20, 2) as revenue,
    round(orders.revenue / nullif(orders.order_count, 0), 2)::numeric(20, 2) as average_order_value,
    orders.first_order_at::timestamptz as first_order_at,
    orders.last_order_at::timestamptz as last_order_at
from {{ ref('dim_customers') }} as customers
left join orders on customers.customer_id = orders.customer_id
