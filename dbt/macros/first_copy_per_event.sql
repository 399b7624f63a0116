{#- The rows of an event relation, one per event id: the first ingested copy (at-least-once stages may repeat a
    record). Used as a CTE body by the staging models. -#}
{% macro first_copy_per_event(relation) -%}
    select ranked.*
    from (
        select
            events.*,
            row_number() over (partition by events.event_id order by events.ingest_time) as copy_number
        from {{ relation }} as events
    ) as ranked
    where ranked.copy_number = 1
{%- endmacro %}
