"""PostgreSQL state of the registry: idempotent migrations and the queries the registry needs.

Every write runs in one transaction that first takes a transaction-scoped advisory lock, so any number of
registry processes on the same database hand out ids and versions one writer at a time; unique constraints
back this up. Schema rows are never updated or removed, which makes ``id -> schema`` safe to cache forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

SCHEMA = "schema_registry"
# Key of the advisory lock serialising writers (any constant shared by all instances).
WRITE_LOCK_KEY = 0x4652_4C53_5251  # "FRLSRQ"

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        f"""
        CREATE TABLE IF NOT EXISTS {SCHEMA}.schemas (
            id integer PRIMARY KEY CHECK (id > 0),
            guid uuid NOT NULL UNIQUE,
            schema_type text NOT NULL,
            schema_text text NOT NULL,
            refs jsonb NOT NULL DEFAULT '[]'::jsonb,
            fingerprint text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS {SCHEMA}.subject_versions (
            subject text NOT NULL,
            version integer NOT NULL CHECK (version > 0),
            schema_id integer NOT NULL REFERENCES {SCHEMA}.schemas (id),
            deleted boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (subject, version)
        );
        CREATE INDEX IF NOT EXISTS subject_versions_schema_id ON {SCHEMA}.subject_versions (schema_id);
        CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_references (
            schema_id integer NOT NULL REFERENCES {SCHEMA}.schemas (id),
            name text NOT NULL,
            subject text NOT NULL,
            version integer NOT NULL,
            PRIMARY KEY (schema_id, name)
        );
        CREATE INDEX IF NOT EXISTS schema_references_target
            ON {SCHEMA}.schema_references (subject, version);
        CREATE TABLE IF NOT EXISTS {SCHEMA}.config (
            subject text PRIMARY KEY,
            is_global boolean NOT NULL DEFAULT false,
            compatibility text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS {SCHEMA}.modes (
            subject text PRIMARY KEY,
            is_global boolean NOT NULL DEFAULT false,
            mode text NOT NULL
        );
        """,
    ),
]

# Subject key of the global config and mode rows (subjects holding NUL are refused, so no clash).
GLOBAL_KEY = "\u0001global"


@dataclass(frozen=True)
class SchemaRow:
    id: int
    guid: str
    schema_type: str
    text: str
    references: list[dict[str, Any]]


@dataclass(frozen=True)
class VersionRow:
    subject: str
    version: int
    schema_id: int
    deleted: bool


async def migrate(conn: AsyncConnection[Any]) -> None:
    """Create or upgrade the ``schema_registry`` schema (safe to run concurrently and repeatedly)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.migrations "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.migrations")
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, sql in MIGRATIONS:
            if version > current:
                await conn.execute(sql)  # type: ignore[arg-type]
                await conn.execute(f"INSERT INTO {SCHEMA}.migrations (version) VALUES (%s)", (version,))


async def lock_for_write(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))


def _schema_row(row: tuple[Any, ...]) -> SchemaRow:
    return SchemaRow(int(row[0]), str(row[1]), row[2], row[3], list(row[4] or []))


_SCHEMA_COLUMNS = "id, guid, schema_type, schema_text, refs"


async def schema_by_id(conn: AsyncConnection[Any], schema_id: int) -> SchemaRow | None:
    cur = await conn.execute(f"SELECT {_SCHEMA_COLUMNS} FROM {SCHEMA}.schemas WHERE id = %s", (schema_id,))
    row = await cur.fetchone()
    return _schema_row(row) if row else None


async def schema_by_guid(conn: AsyncConnection[Any], guid: str) -> SchemaRow | None:
    cur = await conn.execute(f"SELECT {_SCHEMA_COLUMNS} FROM {SCHEMA}.schemas WHERE guid = %s", (guid,))
    row = await cur.fetchone()
    return _schema_row(row) if row else None


async def schema_by_fingerprint(conn: AsyncConnection[Any], fingerprint: str) -> SchemaRow | None:
    cur = await conn.execute(f"SELECT {_SCHEMA_COLUMNS} FROM {SCHEMA}.schemas WHERE fingerprint = %s", (fingerprint,))
    row = await cur.fetchone()
    return _schema_row(row) if row else None


async def next_schema_id(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {SCHEMA}.schemas")
    row = await cur.fetchone()
    return int(row[0]) if row else 1


async def insert_schema(
    conn: AsyncConnection[Any],
    schema_id: int,
    guid: str,
    schema_type: str,
    text: str,
    references: list[dict[str, Any]],
    fingerprint: str,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.schemas (id, guid, schema_type, schema_text, refs, fingerprint) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (schema_id, guid, schema_type, text, Jsonb(references), fingerprint),
    )
    for ref in references:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.schema_references (schema_id, name, subject, version) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (schema_id, ref["name"], ref["subject"], ref["version"]),
        )


async def _version_rows(conn: AsyncConnection[Any], where: str, value: Any) -> list[VersionRow]:
    """The subject versions the ``where ... order by`` clause (one parameter) selects."""
    cur = await conn.execute(
        f"SELECT subject, version, schema_id, deleted FROM {SCHEMA}.subject_versions WHERE {where}", (value,)
    )
    return [VersionRow(r[0], int(r[1]), int(r[2]), bool(r[3])) for r in await cur.fetchall()]


async def versions(conn: AsyncConnection[Any], subject: str) -> list[VersionRow]:
    """All versions of a subject still stored (soft-deleted included), oldest first."""
    return await _version_rows(conn, "subject = %s ORDER BY version", subject)


async def insert_version(conn: AsyncConnection[Any], subject: str, version: int, schema_id: int) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.subject_versions (subject, version, schema_id) VALUES (%s, %s, %s)",
        (subject, version, schema_id),
    )


async def soft_delete(conn: AsyncConnection[Any], subject: str, version_numbers: list[int]) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.subject_versions SET deleted = true WHERE subject = %s AND version = ANY(%s)",
        (subject, version_numbers),
    )


async def hard_delete(conn: AsyncConnection[Any], subject: str, version_numbers: list[int]) -> None:
    await conn.execute(
        f"DELETE FROM {SCHEMA}.subject_versions WHERE subject = %s AND version = ANY(%s)",
        (subject, version_numbers),
    )


async def subjects(conn: AsyncConnection[Any], *, include_deleted: bool, deleted_only: bool, prefix: str) -> list[str]:
    if deleted_only:
        having = "HAVING bool_or(deleted)"
    elif include_deleted:
        having = ""
    else:
        having = "HAVING bool_or(NOT deleted)"
    cur = await conn.execute(
        f"SELECT subject FROM {SCHEMA}.subject_versions WHERE starts_with(subject, %s) "
        f"GROUP BY subject {having} ORDER BY subject",
        (prefix,),
    )
    return [r[0] for r in await cur.fetchall()]


async def usages(conn: AsyncConnection[Any], schema_id: int) -> list[VersionRow]:
    return await _version_rows(conn, "schema_id = %s ORDER BY subject, version", schema_id)


async def referenced_by(conn: AsyncConnection[Any], subject: str, version: int, *, include_deleted: bool) -> list[int]:
    """Ids of the schemas, still registered under some subject, that reference ``subject`` ``version``."""
    deleted_clause = "" if include_deleted else "AND NOT sv.deleted"
    cur = await conn.execute(
        f"SELECT DISTINCT r.schema_id FROM {SCHEMA}.schema_references r "
        f"JOIN {SCHEMA}.subject_versions sv ON sv.schema_id = r.schema_id {deleted_clause} "
        "WHERE r.subject = %s AND r.version = %s ORDER BY r.schema_id",
        (subject, version),
    )
    return [int(r[0]) for r in await cur.fetchall()]


async def get_setting(conn: AsyncConnection[Any], table: str, subject: str) -> str | None:
    column = "compatibility" if table == "config" else "mode"
    cur = await conn.execute(f"SELECT {column} FROM {SCHEMA}.{table} WHERE subject = %s", (subject,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def put_setting(conn: AsyncConnection[Any], table: str, subject: str, value: str) -> None:
    column = "compatibility" if table == "config" else "mode"
    await conn.execute(
        f"INSERT INTO {SCHEMA}.{table} (subject, is_global, {column}) VALUES (%s, %s, %s) "
        f"ON CONFLICT (subject) DO UPDATE SET {column} = EXCLUDED.{column}",
        (subject, subject == GLOBAL_KEY, value),
    )


async def delete_setting(conn: AsyncConnection[Any], table: str, subject: str) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE subject = %s", (subject,))


async def any_subject(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.subject_versions)")
    row = await cur.fetchone()
    return bool(row and row[0])
