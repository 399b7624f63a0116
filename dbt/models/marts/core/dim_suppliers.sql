-- Current version of every supplier.
with versions as (
    {{ current_version(ref('snap_suppliers'), 'supplier_id') }}
)

select
    supplier_id,
    supplier_name,
    country,
    currency,
    payment_terms_days,
    valid_from,
    version_count
from versions
where dbt_valid_to is null
