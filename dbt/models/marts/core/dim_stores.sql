-- Current version of every store.
with versions as (
    {{ current_version(ref('snap_stores'), 'store_id') }}
)

select
    store_id,
    store_name,
    country,
    currency,
    timezone,
    valid_from,
    version_count
from versions
where dbt_valid_to is null
