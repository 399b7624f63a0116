-- Current products (latest reference record per product).
select
    product_id,
    name as product_name,
    category,
    subcategory,
    brand,
    price as list_price,
    currency,
    stock_quantity,
    is_active,
    updated_at
from {{ source('raw', 'reference_products') }}
