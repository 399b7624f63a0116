{#- on-run-end: each result of the invocation (a node built or tested, a source's freshness) as a row of
    audit.dbt_results, so the warehouse keeps what every dbt command did. run_label names the run it belongs to: the
    Airflow DAG run of the task (AIRFLOW_CTX_DAG_RUN_ID, which Airflow sets for its tasks), else the invocation. -#}
{% macro record_results(results) -%}
    {%- if execute -%}
        {%- set label = env_var("AIRFLOW_CTX_DAG_RUN_ID", "") or invocation_id -%}
        create schema if not exists audit;
        create table if not exists audit.dbt_results (
            invocation_id text not null,
            run_label text not null,
            command text not null,
            unique_id text not null,
            resource_type text not null,
            status text not null,
            recorded_at timestamptz not null default now()
        );
        {%- for result in results %}
            insert into audit.dbt_results (invocation_id, run_label, command, unique_id, resource_type, status)
            values (
                '{{ invocation_id }}', '{{ label | replace("'", "''") }}', '{{ flags.WHICH }}',
                '{{ result.node.unique_id | replace("'", "''") }}', '{{ result.node.resource_type }}',
                '{{ result.status }}'
            );
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}
