-- One row per supplier payment with the invoice it settles: payment delay against the invoice's due date
-- (negative when paid early) and whether it was late.
with payments as (
    select distinct on (payment_id) *
    from {{ ref('stg_supplier_payments') }}
    order by payment_id asc, event_time desc
),

invoices as (
    select distinct on (invoice_id)
        invoice_id,
        issue_date,
        due_date as invoice_due_date,
        amount as invoice_amount
    from {{ ref('stg_supplier_invoices') }}
    order by invoice_id asc, event_time desc
)

select
    payments.payment_id,
    payments.invoice_id,
    payments.supplier_id,
    payments.payment_method,
    payments.amount,
    payments.currency,
    invoices.invoice_amount,
    invoices.issue_date,
    payments.paid_date,
    payments.event_time as paid_at,
    coalesce(invoices.invoice_due_date, payments.due_date) as due_date,
    payments.paid_date - coalesce(invoices.invoice_due_date, payments.due_date) as payment_delay_days,
    payments.paid_date > coalesce(invoices.invoice_due_date, payments.due_date) as is_late
from payments
left join invoices on payments.invoice_id = invoices.invoice_id
