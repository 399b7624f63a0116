"""PostgreSQL side of the jobs: schemas and tables, the JDBC target of Spark's writes, and the per-day swap.

A job writes a day's rows through JDBC into an unlogged staging table, then ``replace_day`` deletes that day from
the target table and inserts the staged rows in one transaction: a run of day D leaves exactly the rows of its
last successful run, whatever ran before (and a failed run leaves the previous rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import sql

SCHEMAS = ("raw", "analytics")
REJECTED = "raw.rejected"
REJECTED_DDL = (
    "CREATE TABLE IF NOT EXISTS raw.rejected (\n"
    '  "family" text NOT NULL,\n'
    '  "ds" date NOT NULL,\n'
    '  "event_id" text,\n'
    '  "reason" text NOT NULL,\n'
    '  "source_file" text,\n'
    '  "record" jsonb\n'
    ")"
)
# Per family and day, what the last successful load read, loaded, rejected and removed as duplicates: written in the
# transaction that swaps the day's rows, so it always describes the rows in ``raw.<family>``.
LOAD_AUDIT = "raw.load_audit"
LOAD_AUDIT_DDL = (
    "CREATE TABLE IF NOT EXISTS raw.load_audit (\n"
    '  "family" text NOT NULL,\n'
    '  "ds" date NOT NULL,\n'
    '  "read" bigint NOT NULL,\n'
    '  "loaded" bigint NOT NULL,\n'
    '  "rejected" bigint NOT NULL,\n'
    '  "duplicates" bigint NOT NULL,\n'
    '  "unreadable_files" bigint NOT NULL,\n'
    '  "loaded_at" timestamptz NOT NULL DEFAULT now(),\n'
    '  PRIMARY KEY ("family", "ds")\n'
    ")"
)


def jdbc_target(dsn: str) -> tuple[str, dict[str, str]]:
    """``postgresql://user:password@host:port/db`` as a JDBC URL and connection properties."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ValueError("POSTGRES_DSN: expected postgresql://user[:password]@host[:port]/database")
    properties = {
        "driver": "org.postgresql.Driver",
        # text columns carry JSON and UUIDs: let the server cast them to the column's type
        "stringtype": "unspecified",
        "reWriteBatchedInserts": "true",
    }
    if parts.username:
        properties["user"] = unquote(parts.username)
    if parts.password:
        properties["password"] = unquote(parts.password)
    properties.update(dict(parse_qsl(parts.query)))
    url = f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path or '/'}"
    return url, properties


def _qualified(name: str) -> sql.Composed:
    schema, _, table = name.partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def ensure(dsn: str, ddl: Iterable[str]) -> None:
    """The schemas and tables (idempotent)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for statement in ddl:
            conn.execute(statement.encode())


def stage_name(table: str, label: str, day: dt.date) -> str:
    schema, _, name = table.partition(".")
    return f"{schema}._stage_{name}_{label}_{day:%Y%m%d}"


def create_stage(dsn: str, table: str, stage: str) -> None:
    """An empty unlogged copy of ``table``'s columns (no keys: duplicates would fail the swap, not the write)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_qualified(stage)))
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                _qualified(stage), _qualified(table)
            )
        )


def replace_day(
    dsn: str,
    swaps: Sequence[tuple[str, str, dict[str, object]]],
    day_column: str,
    day: dt.date,
    finish: Callable[[psycopg.Connection[Any], dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """In one transaction, for each ``(table, stage, match)``: delete ``table``'s rows of ``day`` (and ``match``),
    insert the staged rows, drop the stage; then ``finish`` (the same connection, the rows inserted per table)
    writes what must commit with them. Returns the rows inserted per table."""
    inserted: dict[str, int] = {}
    with psycopg.connect(dsn) as conn, conn.transaction():
        for table, stage, match in swaps:
            condition = sql.SQL(" AND ").join(
                [sql.SQL("{} = %s").format(sql.Identifier(day_column))]
                + [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in match]
            )
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(_qualified(table), condition), [day, *match.values()]
            )
            cursor = conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(_qualified(table), _qualified(stage))
            )
            inserted[table] = inserted.get(table, 0) + cursor.rowcount
            conn.execute(sql.SQL("DROP TABLE {}").format(_qualified(stage)))
        if finish is not None:
            finish(conn, inserted)
    return inserted


def record_load(conn: psycopg.Connection[Any], family: str, day: dt.date, counts: dict[str, int]) -> None:
    """The family's load of ``day`` into ``raw.load_audit`` (replacing an earlier load's row)."""
    names = ("read", "loaded", "rejected", "duplicates", "unreadable_files")
    conn.execute(
        "INSERT INTO raw.load_audit (family, ds, read, loaded, rejected, duplicates, unreadable_files, loaded_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (family, ds) DO UPDATE SET read = EXCLUDED.read, "
        "loaded = EXCLUDED.loaded, rejected = EXCLUDED.rejected, duplicates = EXCLUDED.duplicates, "
        "unreadable_files = EXCLUDED.unreadable_files, loaded_at = EXCLUDED.loaded_at",
        [family, day, *(counts[name] for name in names)],
    )
