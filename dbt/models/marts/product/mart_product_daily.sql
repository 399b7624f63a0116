-- Product analytics per product and UTC day: views, unique visitors (distinct devices), orders placed with the
-- product and units, and the conversion from views to orders (orders / unique visitors).
with views as (
    select
        product_id,
        view_date as activity_date,
        count(*) as view_count,
        count(distinct device_id) as unique_visitors
    from {{ ref('fct_product_views') }}
    group by product_id, view_date
),

orders as (
    select
        product_id,
        placed_date as activity_date,
        count(distinct order_id) as order_count,
        sum(quantity) as units_ordered
    from {{ ref('fct_order_lines') }}
    group by product_id, placed_date
)

select
    coalesce(views.product_id, orders.product_id)::text as product_id,
    coalesce(views.activity_date, orders.activity_date)::date as activity_date,
    coalesce(views.view_count, 0)::bigint as view_count,
    coalesce(views.unique_visitors, 0)::bigint as unique_visitors,
    coalesce(orders.order_count, 0)::bigint as order_count,
    coalesce(orders.units_ordered, 0)::bigint as units_ordered,
    round(orders.order_count::numeric / nullif(views.unique_visitors, 0), 4)::numeric(12, 4) as conversion_rate
from views
full outer join orders
    on views.product_id = orders.product_id and views.activity_date = orders.activity_date
