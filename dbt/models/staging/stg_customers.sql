-- Current customers (latest reference record per customer).
select
    customer_id,
    segment,
    region,
    country,
    city,
    signup_date,
    updated_at
from {{ source('raw', 'reference_customers') }}
