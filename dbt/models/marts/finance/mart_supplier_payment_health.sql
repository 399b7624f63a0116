-- Supplier payment health: invoices, payments, late payments and their rate, delays, unpaid invoices, and a
-- health grade (HEALTHY: at most 10 % of payments late, WATCH: at most 30 %, AT_RISK: more; NO_PAYMENTS).
with invoices as (
    select
        supplier_id,
        count(distinct invoice_id) as invoice_count
    from {{ ref('stg_supplier_invoices') }}
    group by supplier_id
),

payments as (
    select
        supplier_id,
        count(*) as payment_count,
        count(distinct invoice_id) as paid_invoice_count,
        sum(amount) as paid_amount,
        count(*) filter (where is_late) as late_payment_count,
        avg(payment_delay_days) as average_delay_days,
        max(payment_delay_days) as max_delay_days
    from {{ ref('fct_supplier_payments') }}
    group by supplier_id
),

graded as (
    select
        suppliers.supplier_id,
        suppliers.supplier_name,
        suppliers.currency,
        suppliers.payment_terms_days,
        coalesce(invoices.invoice_count, 0) as invoice_count,
        coalesce(payments.payment_count, 0) as payment_count,
        coalesce(payments.paid_amount, 0) as paid_amount,
        coalesce(payments.late_payment_count, 0) as late_payment_count,
        payments.late_payment_count::numeric / nullif(payments.payment_count, 0) as late_payment_rate,
        payments.average_delay_days,
        payments.max_delay_days,
        greatest(
            coalesce(invoices.invoice_count, 0) - coalesce(payments.paid_invoice_count, 0), 0
        ) as unpaid_invoice_count
    from {{ ref('dim_suppliers') }} as suppliers
    left join invoices on suppliers.supplier_id = invoices.supplier_id
    left join payments on suppliers.supplier_id = payments.supplier_id
)

select
    supplier_id::text as supplier_id,
    supplier_name::text as supplier_name,
    currency::text as currency,
    payment_terms_days::integer as payment_terms_days,
    invoice_count::bigint as invoice_count,
    payment_count::bigint as payment_count,
    paid_amount::numeric(20, 2) as paid_amount,
    late_payment_count::bigint as late_payment_count,
    round(late_payment_rate, 4)::numeric(6, 4) as late_payment_rate,
    round(average_delay_days, 2)::numeric(10, 2) as average_delay_days,
    max_delay_days::integer as max_delay_days,
    unpaid_invoice_count::bigint as unpaid_invoice_count,
    (case
        when payment_count = 0 then 'NO_PAYMENTS'
        when late_payment_rate <= 0.1 then 'HEALTHY'
        when late_payment_rate <= 0.3 then 'WATCH'
        else 'AT_RISK'
    end)::text as health
from graded
