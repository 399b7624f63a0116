-- Run (idempotently) in FerretDB's PostgreSQL database before FerretDB first uses it.
--
-- FerretDB pushes an equality filter on a top-level field down to PostgreSQL as `_jsonb -> 'field' @> value` (the
-- field equals the value, or is an array holding it), while the indexes it creates are B-trees on
-- `(_jsonb -> 'field')`, which cannot answer `@>`. These event triggers give every such single-field B-tree a GIN
-- (jsonb_path_ops) companion on the same expression, so `_id` lookups and indexed equality queries become index
-- scans, and drop the companion with its index. Nested fields (`a.b`) are not pushed down by FerretDB: their
-- B-trees get no companion.

CREATE OR REPLACE FUNCTION public.freightline_containment_index() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
    created record;
    field text;
BEGIN
    FOR created IN
        SELECT c.objid, i.indrelid, ic.relname
        FROM pg_event_trigger_ddl_commands() c
        JOIN pg_index i ON i.indexrelid = c.objid
        JOIN pg_class ic ON ic.oid = c.objid
        JOIN pg_am am ON am.oid = ic.relam
        WHERE c.object_type = 'index' AND am.amname = 'btree' AND i.indnkeyatts = 1
    LOOP
        field := substring(pg_get_indexdef(created.objid, 1, true) FROM '^\(_jsonb -> (''(?:[^'']|'''')*'')::text\)$');
        IF field IS NOT NULL THEN
            EXECUTE format(
                'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %s) jsonb_path_ops)',
                left(created.relname, 54) || '_contains', created.indrelid::regclass, field
            );
        END IF;
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION public.freightline_drop_containment_index() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
    dropped record;
BEGIN
    FOR dropped IN
        SELECT schema_name, object_name FROM pg_event_trigger_dropped_objects()
        WHERE object_type = 'index' AND object_name NOT LIKE '%\_contains'
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I.%I', dropped.schema_name, left(dropped.object_name, 54) || '_contains');
    END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS freightline_containment_index;
CREATE EVENT TRIGGER freightline_containment_index ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION public.freightline_containment_index();

DROP EVENT TRIGGER IF EXISTS freightline_drop_containment_index;
CREATE EVENT TRIGGER freightline_drop_containment_index ON sql_drop WHEN TAG IN ('DROP INDEX')
    EXECUTE FUNCTION public.freightline_drop_containment_index();

-- `_jsonb -> $1 @> $2` matches the index expression only once the field name is a constant: plan every statement
-- with its parameters' values.
DO $do$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
END $do$;
