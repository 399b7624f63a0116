-- Current stores (latest reference record per store).
select
    store_id,
    name as store_name,
    country,
    currency,
    timezone,
    updated_at
from {{ source('raw', 'reference_stores') }}
