{#- The current version (dbt_valid_to null) of every key of an SCD type 2 snapshot, with the snapshot's other
    columns, when that version began (valid_from) and how many versions the key has (version_count). -#}
{% macro current_version(snapshot, key) -%}
    select
        versions.*,
        versions.dbt_valid_from as valid_from,
        count(*) over (partition by versions.{{ key }}) as version_count
    from {{ snapshot }} as versions
{%- endmacro %}
