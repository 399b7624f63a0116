-- Seed 001: no order ships before it was ordered.
select
    order_id,
    order_date,
    ship_date
from {{ ref('fct_orders') }}
where ship_date < order_date
