-- Current version of every customer, with when that version began and how many versions the history holds.
with versions as (
    {{ current_version(ref('snap_customers'), 'customer_id') }}
)

select
    customer_id,
    segment,
    region,
    country,
    city,
    signup_date,
    valid_from,
    version_count
from versions
where dbt_valid_to is null
