-- The Flink job's ten most viewed products per category and 10-minute window (hopping by 5 minutes), window bounds
-- as UTC timestamps with zone.
select
    window_start at time zone 'UTC' as window_start,
    window_end at time zone 'UTC' as window_end,
    category,
    product_id,
    rank as view_rank,
    view_count,
    unique_visitors
from {{ source('streaming', 'category_top_products_10m') }}
