-- Current version of every product, with when that version began and how many versions (price changes) it had.
with versions as (
    {{ current_version(ref('snap_products'), 'product_id') }}
)

select
    product_id,
    product_name,
    category,
    subcategory,
    brand,
    list_price,
    currency,
    stock_quantity,
    is_active,
    valid_from,
    version_count
from versions
where dbt_valid_to is null
