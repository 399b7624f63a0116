-- Seed 001: every line's sales amount is its price times its quantity.
select
    order_line_id,
    price,
    quantity,
    sales_amount
from {{ ref('fct_order_lines') }}
where sales_amount <> price * quantity
