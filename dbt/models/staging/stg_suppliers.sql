-- Current suppliers (latest reference record per supplier).
select
    supplier_id,
    name as supplier_name,
    country,
    currency,
    payment_terms_days,
    updated_at
from {{ source('raw', 'reference_suppliers') }}
