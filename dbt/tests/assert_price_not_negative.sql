-- Seed 001: no order line is priced below zero (rows returned fail the test).
select
    order_line_id,
    price
from {{ ref('fct_order_lines') }}
where price < 0
