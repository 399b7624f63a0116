-- One row per product view.
select
    event_id as view_id,
    product_id,
    device_id,
    store_id,
    referrer_url,
    event_time as viewed_at,
    view_date
from {{ ref('stg_product_views') }}
