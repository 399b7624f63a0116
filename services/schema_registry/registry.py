"""The registry's behaviour, as Confluent's Schema Registry defines it, on top of :mod:`.store`."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import avro.schema
import orjson
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from schemas.compatibility import (
    CompatibilityLevel,
    CompatibilityReport,
    SchemaParseError,
    check_parsed_compatibility,
)

from . import errors, store
from .schemas import AVRO, SUPPORTED_TYPES, Reference, SchemaText, canonical_avro, parse_avro
from .store import GLOBAL_KEY, SchemaRow, VersionRow

MAX_INT = 2**31 - 1
MAX_SUBJECT_LENGTH = 1000


class Mode(enum.StrEnum):
    READWRITE = "READWRITE"
    READONLY = "READONLY"
    READONLY_OVERRIDE = "READONLY_OVERRIDE"
    IMPORT = "IMPORT"


@dataclass(frozen=True)
class RegisterRequest:
    schema: SchemaText
    schema_id: int | None = None
    version: int | None = None


@dataclass(frozen=True)
class Registered:
    schema_id: int
    version: int
    guid: str
    schema: SchemaText
    created: bool


def valid_subject(subject: str) -> bool:
    return 0 < len(subject) <= MAX_SUBJECT_LENGTH and not any(ord(c) < 0x20 for c in subject)


def check_subject(subject: str) -> None:
    """Subjects that could never have been registered are simply not found."""
    if not valid_subject(subject):
        raise errors.subject_not_found(subject)


def parse_version(value: str) -> int | None:
    """``None`` means latest; raises 42202 for anything that is not a version id."""
    if value == "latest":
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.invalid_version(value) from None
    if number == -1:
        return None
    if number < 1 or number > MAX_INT:
        raise errors.invalid_version(value)
    return number


def _clean_string(value: object, what: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise errors.invalid_schema(f"{what} must be a string")
    return value


def parse_register_body(body: object, *, normalize: bool, allow_ids: bool = True) -> RegisterRequest:
    """Validate a register/lookup/compatibility request body into a canonical schema."""
    if not isinstance(body, dict):
        raise errors.unprocessable("Request body must be a JSON object")
    text = body.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise errors.invalid_schema("Empty schema")
    schema_type = body.get("schemaType") or AVRO
    if not isinstance(schema_type, str) or schema_type.upper() not in SUPPORTED_TYPES:
        raise errors.invalid_schema(f"Unsupported schema type {schema_type!r}")
    raw_refs = body.get("references") or []
    if not isinstance(raw_refs, list):
        raise errors.invalid_schema("references must be a list")
    references: list[Reference] = []
    for raw in raw_refs:
        if not isinstance(raw, dict):
            raise errors.invalid_schema("each reference needs name, subject and version")
        name = _clean_string(raw.get("name"), "reference name")
        subject = _clean_string(raw.get("subject"), "reference subject")
        version = raw.get("version", -1)
        if isinstance(version, bool) or not isinstance(version, int) or not (-1 <= version <= MAX_INT):
            raise errors.invalid_schema("reference version must be an integer")
        if version == 0 or not valid_subject(subject):
            raise errors.invalid_schema(f"invalid reference {name}")
        references.append(Reference(name, subject, version))
    try:
        canonical = canonical_avro(text, normalize=normalize)
    except SchemaParseError as exc:
        raise errors.invalid_schema(str(exc)) from None
    schema_id = body.get("id")
    version = body.get("version")
    for value in (schema_id, version):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not (-1 <= value <= MAX_INT)
        ):
            raise errors.unprocessable("id and version must be integers")
    return RegisterRequest(
        SchemaText(schema_type.upper(), canonical, tuple(references)),
        schema_id if allow_ids and schema_id not in (None, -1, 0) else None,
        version if allow_ids and version not in (None, -1, 0) else None,
    )


class Registry:
    """Confluent Schema Registry semantics over a PostgreSQL connection pool."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], default: CompatibilityLevel) -> None:
        self.pool = pool
        self.default_compatibility = default
        self._schemas: dict[int, SchemaRow] = {}
        self._parsed: dict[int, avro.schema.Schema] = {}

    # -- plumbing ------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self.pool.connection() as conn, conn.transaction():
            await store.lock_for_write(conn)
            yield conn

    async def migrate(self) -> None:
        async with self.pool.connection() as conn:
            await store.migrate(conn)

    async def ping(self) -> bool:
        async with self.pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
        return True

    # -- schemas by id ---------------------------------------------------------------------------------------

    def cached_schema(self, schema_id: int) -> SchemaRow | None:
        return self._schemas.get(schema_id)

    async def schema(self, schema_id: int, conn: AsyncConnection[Any] | None = None) -> SchemaRow:
        row = self._schemas.get(schema_id)
        if row is not None:
            return row
        if not 0 < schema_id <= MAX_INT:
            raise errors.schema_not_found(schema_id)
        if conn is None:
            async with self._read() as own:
                row = await store.schema_by_id(own, schema_id)
        else:
            row = await store.schema_by_id(conn, schema_id)
        if row is None:
            raise errors.schema_not_found(schema_id)
        self._schemas[schema_id] = row
        return row

    async def schema_by_guid(self, guid: str) -> SchemaRow:
        try:
            parsed = str(uuid.UUID(guid))
        except ValueError:
            raise errors.schema_not_found(guid) from None
        async with self._read() as conn:
            row = await store.schema_by_guid(conn, parsed)
        if row is None:
            raise errors.schema_not_found(guid)
        return row

    async def schema_usages(self, schema_id: int, *, deleted: bool, subject: str | None) -> list[VersionRow]:
        await self.schema(schema_id)
        async with self._read() as conn:
            rows = await store.usages(conn, schema_id)
        return [r for r in rows if (deleted or not r.deleted) and (subject is None or r.subject == subject)]

    # -- parsing with references -------------------------------------------------------------------------

    async def _reference_texts(
        self, conn: AsyncConnection[Any], references: tuple[Reference, ...] | list[dict[str, Any]]
    ) -> tuple[list[str], tuple[Reference, ...]]:
        """Texts of all (transitively) referenced schemas, dependencies first, and the resolved references."""
        texts: list[str] = []
        seen: set[tuple[str, int]] = set()
        resolved: list[Reference] = []

        async def visit(ref: Reference, depth: int) -> Reference:
            if depth > 32:
                raise errors.invalid_schema("references nest too deeply")
            rows = await store.versions(conn, ref.subject)
            live = [r for r in rows if not r.deleted]
            if ref.version == -1:
                target = live[-1] if live else None
            else:
                target = next((r for r in rows if r.version == ref.version), None)
            if target is None:
                raise errors.invalid_schema(
                    f"reference {ref.name} to subject {ref.subject} version {ref.version} not found"
                )
            key = (target.subject, target.version)
            if key not in seen:
                seen.add(key)
                row = await self.schema(target.schema_id, conn)
                for nested in row.references:
                    await visit(Reference(nested["name"], nested["subject"], int(nested["version"])), depth + 1)
                texts.append(row.text)
            return Reference(ref.name, target.subject, target.version)

        for ref in references:
            item = ref if isinstance(ref, Reference) else Reference(ref["name"], ref["subject"], ref["version"])
            resolved.append(await visit(item, 0))
        return texts, tuple(resolved)

    async def _parse_new(self, conn: AsyncConnection[Any], text: SchemaText) -> tuple[avro.schema.Schema, SchemaText]:
        ref_texts, resolved = await self._reference_texts(conn, text.references)
        try:
            parsed = parse_avro(text.text, ref_texts)
        except SchemaParseError as exc:
            raise errors.invalid_schema(str(exc)) from None
        return parsed, SchemaText(text.schema_type, text.text, resolved)

    async def _parsed_row(self, conn: AsyncConnection[Any], schema_id: int) -> avro.schema.Schema:
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            row = await self.schema(schema_id, conn)
            ref_texts, _ = await self._reference_texts(conn, row.references)
            parsed = parse_avro(row.text, ref_texts)
            self._parsed[schema_id] = parsed
        return parsed

    # -- config and mode ---------------------------------------------------------------------------------

    async def _setting(
        self, table: str, subject: str | None, conn: AsyncConnection[Any] | None, default_to_global: bool
    ) -> tuple[bool, str | None]:
        """A subject's setting, else the global one: (found, value); found is False only without fallback."""

        async def lookup(c: AsyncConnection[Any]) -> tuple[bool, str | None]:
            if subject is not None:
                value = await store.get_setting(c, table, subject)
                if value is not None:
                    return True, value
                if not default_to_global:
                    return False, None
            return True, await store.get_setting(c, table, GLOBAL_KEY)

        if conn is not None:
            return await lookup(conn)
        async with self._read() as own:
            return await lookup(own)

    async def compatibility(
        self, subject: str | None, conn: AsyncConnection[Any] | None = None, *, default_to_global: bool = True
    ) -> CompatibilityLevel | None:
        found, value = await self._setting("config", subject, conn, default_to_global)
        if not found:
            return None
        return CompatibilityLevel(value) if value else self.default_compatibility

    async def set_compatibility(self, subject: str | None, level: CompatibilityLevel) -> None:
        async with self._write() as conn:
            await store.put_setting(conn, "config", subject or GLOBAL_KEY, level.value)

    async def delete_compatibility(self, subject: str | None) -> CompatibilityLevel:
        async with self._write() as conn:
            key = subject or GLOBAL_KEY
            value = await store.get_setting(conn, "config", key)
            if subject is not None and value is None:
                await self._stored_versions(conn, subject)
                raise errors.compatibility_not_configured(subject)
            await store.delete_setting(conn, "config", key)
        return CompatibilityLevel(value) if value else self.default_compatibility

    async def mode(
        self, subject: str | None, conn: AsyncConnection[Any] | None = None, *, default_to_global: bool = True
    ) -> Mode | None:
        found, value = await self._setting("modes", subject, conn, default_to_global)
        if not found:
            return None
        return Mode(value) if value else Mode.READWRITE

    async def set_mode(self, subject: str | None, mode: Mode, *, force: bool) -> None:
        async with self._write() as conn:
            if mode is Mode.IMPORT and not force:
                has_data = (
                    await store.any_subject(conn) if subject is None else bool(await store.versions(conn, subject))
                )
                if has_data:
                    raise errors.operation_not_permitted("Cannot import since found existing subjects")
            await store.put_setting(conn, "modes", subject or GLOBAL_KEY, mode.value)

    async def delete_mode(self, subject: str) -> Mode:
        async with self._write() as conn:
            value = await store.get_setting(conn, "modes", subject)
            if value is None:
                await self._stored_versions(conn, subject)
                raise errors.mode_not_configured(subject)
            await store.delete_setting(conn, "modes", subject)
        return Mode(value)

    # -- subjects and versions -----------------------------------------------------------------------------

    async def subjects(self, *, deleted: bool, deleted_only: bool, prefix: str) -> list[str]:
        async with self._read() as conn:
            return await store.subjects(conn, include_deleted=deleted, deleted_only=deleted_only, prefix=prefix)

    async def versions(self, subject: str, *, deleted: bool, deleted_only: bool = False) -> list[int]:
        check_subject(subject)
        async with self._read() as conn:
            rows = await store.versions(conn, subject)
        if deleted_only:
            chosen = [r.version for r in rows if r.deleted]
        else:
            chosen = [r.version for r in rows if deleted or not r.deleted]
        if not chosen and not any(not r.deleted for r in rows) and not (deleted and rows):
            raise errors.subject_not_found(subject)
        return chosen

    async def version(
        self, subject: str, version: int | None, *, deleted: bool = False
    ) -> tuple[VersionRow, SchemaRow]:
        check_subject(subject)
        async with self._read() as conn:
            rows = await store.versions(conn, subject)
            row = self._pick(subject, rows, version, deleted=deleted)
            return row, await self.schema(row.schema_id, conn)

    @staticmethod
    def _pick(subject: str, rows: list[VersionRow], version: int | None, *, deleted: bool) -> VersionRow:
        visible = [r for r in rows if deleted or not r.deleted]
        if not visible and (not rows or version is None or not any(not r.deleted for r in rows)):
            raise errors.subject_not_found(subject)
        if version is None:
            return visible[-1]
        for r in visible:
            if r.version == version:
                return r
        raise errors.version_not_found(version)

    async def referenced_by(self, subject: str, version: int | None) -> list[int]:
        check_subject(subject)
        async with self._read() as conn:
            row = self._pick(subject, await store.versions(conn, subject), version, deleted=False)
            return await store.referenced_by(conn, subject, row.version, include_deleted=False)

    async def lookup(self, subject: str, text: SchemaText, *, deleted: bool) -> tuple[VersionRow, SchemaRow]:
        check_subject(subject)
        async with self._read() as conn:
            rows = await store.versions(conn, subject)
            if not rows or not (deleted or any(not r.deleted for r in rows)):
                raise errors.subject_not_found(subject)
            _, resolved = await self._parse_new(conn, text)
            existing = await store.schema_by_fingerprint(conn, resolved.fingerprint)
            if existing is not None:
                for r in reversed(rows):
                    if r.schema_id == existing.id and (deleted or not r.deleted):
                        return r, existing
        raise errors.schema_not_found()

    # -- registration ----------------------------------------------------------------------------------------

    async def _writable_mode(self, subject: str, conn: AsyncConnection[Any]) -> Mode | None:
        """The subject's mode (or the global one); raises when it does not let the subject's versions change."""
        mode = await self.mode(subject, conn)
        if mode in (Mode.READONLY, Mode.READONLY_OVERRIDE):
            raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
        return mode

    @staticmethod
    async def _stored_versions(conn: AsyncConnection[Any], subject: str) -> list[VersionRow]:
        """Every stored version of a subject (soft-deleted included); raises when it has none."""
        rows = await store.versions(conn, subject)
        if not rows:
            raise errors.subject_not_found(subject)
        return rows

    async def register(self, subject: str, request: RegisterRequest) -> Registered:
        if not valid_subject(subject):
            raise errors.invalid_subject(subject)
        async with self._write() as conn:
            mode = await self._writable_mode(subject, conn)
            new_parsed, text = await self._parse_new(conn, request.schema)
            rows = await store.versions(conn, subject)
            live = [r for r in rows if not r.deleted]
            existing = await store.schema_by_fingerprint(conn, text.fingerprint)
            if existing is not None and request.schema_id not in (None, existing.id):
                raise errors.operation_not_permitted(
                    f"Overwrite new schema with id {request.schema_id} is not permitted."
                )
            if existing is not None:
                for r in reversed(live):
                    if r.schema_id == existing.id and request.version in (None, r.version):
                        return Registered(existing.id, r.version, existing.guid, text, created=False)
            if mode is not Mode.IMPORT:
                if request.schema_id is not None and (existing is None or existing.id != request.schema_id):
                    raise errors.operation_not_permitted(
                        f"Subject {subject} is not in import mode: a schema id cannot be specified"
                    )
                if request.version is not None and request.version != (rows[-1].version + 1 if rows else 1):
                    raise errors.operation_not_permitted(
                        f"Subject {subject} is not in import mode: version {request.version} cannot be specified"
                    )
                level = await self.compatibility(subject, conn) or self.default_compatibility
                history = [await self._parsed_row(conn, r.schema_id) for r in live]
                report = check_parsed_compatibility(new_parsed, history, level)
                if not report.is_compatible:
                    details = await self._verbose_with_schema(conn, report, live, level.value)
                    raise errors.incompatible_schema(subject, details)
            # id
            if existing is not None:
                if request.schema_id is not None and request.schema_id != existing.id:
                    raise errors.operation_not_permitted(
                        f"Overwrite new schema with id {request.schema_id} is not permitted."
                    )
                schema_id, guid = existing.id, existing.guid
            else:
                if request.schema_id is not None:
                    if await store.schema_by_id(conn, request.schema_id) is not None:
                        raise errors.operation_not_permitted(
                            f"Overwrite new schema with id {request.schema_id} is not permitted."
                        )
                    schema_id = request.schema_id
                else:
                    schema_id = await store.next_schema_id(conn)
                guid = str(uuid.uuid4())
                await store.insert_schema(
                    conn, schema_id, guid, text.schema_type, text.text, text.references_json(), text.fingerprint
                )
            # version
            if request.version is not None:
                if any(r.version == request.version for r in rows):
                    raise errors.operation_not_permitted(
                        f"Overwrite new schema in subject {subject} with version {request.version} is not permitted."
                    )
                version = request.version
            else:
                version = max((r.version for r in rows), default=0) + 1
            await store.insert_version(conn, subject, version, schema_id)
        return Registered(schema_id, version, guid, text, created=True)

    async def _verbose_with_schema(
        self, conn: AsyncConnection[Any], report: CompatibilityReport, live: list[VersionRow], level: str
    ) -> list[str]:
        messages = report.messages
        if report.existing_index is not None:
            old = live[report.existing_index]
            row = await self.schema(old.schema_id, conn)
            messages.append(f"{{oldSchemaVersion: {old.version}}}")
            messages.append(f"{{oldSchema: '{row.text}'}}")
        messages.append(f"{{validateFields: 'false', compatibility: '{level}'}}")
        return messages

    async def test_compatibility(
        self, subject: str, text: SchemaText, version: int | None, *, all_versions: bool
    ) -> tuple[bool, list[str]]:
        check_subject(subject)
        async with self._read() as conn:
            rows = await store.versions(conn, subject)
            live = [r for r in rows if not r.deleted]
            new_parsed, _ = await self._parse_new(conn, text)
            level = await self.compatibility(subject, conn) or self.default_compatibility
            if all_versions:
                targets = live
                check_level = level
            else:
                if not live:
                    raise errors.subject_not_found(subject)
                targets = [self._pick(subject, rows, version, deleted=False)]
                check_level = level
            history = [await self._parsed_row(conn, r.schema_id) for r in targets]
            report = check_parsed_compatibility(new_parsed, history, check_level)
            if report.is_compatible:
                return True, []
            return False, await self._verbose_with_schema(conn, report, targets, level.value)

    # -- deletion ---------------------------------------------------------------------------------------------

    async def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        check_subject(subject)
        async with self._write() as conn:
            await self._writable_mode(subject, conn)
            rows = await self._stored_versions(conn, subject)
            live = [r for r in rows if not r.deleted]
            if permanent:
                if live:
                    raise errors.subject_not_soft_deleted(subject)
                targets = rows
            else:
                if not live:
                    raise errors.subject_soft_deleted(subject)
                targets = live
            for r in targets:
                if await store.referenced_by(conn, subject, r.version, include_deleted=permanent):
                    raise errors.reference_exists(subject, r.version)
            numbers = [r.version for r in targets]
            if permanent:
                await store.hard_delete(conn, subject, numbers)
                await store.delete_setting(conn, "config", subject)
                await store.delete_setting(conn, "modes", subject)
            else:
                await store.soft_delete(conn, subject, numbers)
        return numbers

    async def delete_version(self, subject: str, version: int | None, *, permanent: bool) -> int:
        check_subject(subject)
        async with self._write() as conn:
            await self._writable_mode(subject, conn)
            rows = await self._stored_versions(conn, subject)
            if version is None:
                candidates = rows if permanent else [r for r in rows if not r.deleted]
                if not candidates:
                    raise errors.subject_not_found(subject)
                row = candidates[-1]
            else:
                found = next((r for r in rows if r.version == version), None)
                if found is None:
                    raise errors.version_not_found(version)
                row = found
            if permanent and not row.deleted:
                raise errors.version_not_soft_deleted(subject, row.version)
            if not permanent and row.deleted:
                raise errors.version_soft_deleted(subject, row.version)
            if await store.referenced_by(conn, subject, row.version, include_deleted=permanent):
                raise errors.reference_exists(subject, row.version)
            if permanent:
                await store.hard_delete(conn, subject, [row.version])
            else:
                await store.soft_delete(conn, subject, [row.version])
        return row.version


def schema_response(row: SchemaRow, **extra: Any) -> dict[str, Any]:
    """Confluent's schema JSON: ``schemaType`` only when not Avro, ``references`` only when present."""
    body: dict[str, Any] = dict(extra)
    if row.schema_type != AVRO:
        body["schemaType"] = row.schema_type
    if row.references:
        body["references"] = row.references
    body["schema"] = row.text
    return body


def encode(value: Any) -> bytes:
    return orjson.dumps(value)
