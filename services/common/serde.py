"""Avro in the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary body).

Encoding and decoding run on code generated per schema (``services.common.avro_codegen``): byte for byte what
fastavro's schemaless writer writes and value for value what its schemaless reader returns, with fastavro itself as
the fallback (decoding against a reader schema, schemas the generator does not handle). The registry is any
Confluent-compatible one, reached through the shared ``services.common.registry.RegistryClient`` (standard library
HTTP: importing confluent-kafka's registry client cost every service seconds at start). Parsed schemas are
cached by id, so the registry is asked once per schema and process.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import fastavro

from services.common.avro_codegen import reader_for, writer_for
from services.common.registry import RegistryClient, Schema, SchemaRegistryError
from services.common.settings import SchemaRegistrySettings

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")


class SerdeError(Exception):
    """A record that cannot be encoded or decoded; ``kind`` names the reason for dead letters."""

    kind = "serde_error"


class UndecodableRecord(SerdeError):
    kind = "undecodable"


class UnknownSchema(SerdeError):
    kind = "unknown_schema"


class InvalidRecord(SerdeError):
    kind = "invalid_record"


class WrongContract(SerdeError):
    """A valid record of a schema that is not a version of the topic's value subject (another contract)."""

    kind = "wrong_contract"


class RegistryLike(Protocol):
    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Any: ...

    def register_schema(self, subject_name: str, schema: Any, *args: Any, **kwargs: Any) -> int: ...

    def lookup_schema(self, subject_name: str, schema: Any, *args: Any, **kwargs: Any) -> Any: ...

    def get_subjects_by_schema_id(self, schema_id: int, *args: Any, **kwargs: Any) -> list[str]: ...


def registry_client(settings: SchemaRegistrySettings) -> RegistryClient:
    return RegistryClient.from_config(settings.client_config())


def schema_id_of(data: bytes) -> int:
    """The schema id in a wire-format payload's header."""
    if len(data) < HEADER.size:
        raise UndecodableRecord(f"payload of {len(data)} bytes is shorter than the 5-byte header")
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise UndecodableRecord(f"unknown magic byte {magic} (expected {MAGIC_BYTE})")
    return int(schema_id)


def with_schema_id(data: bytes, schema_id: int) -> bytes:
    """``data`` with its header rewritten to ``schema_id`` (the body is untouched)."""
    schema_id_of(data)
    return HEADER.pack(MAGIC_BYTE, schema_id) + data[HEADER.size :]


class Encoder:
    """Writes records of one schema, registered under one subject, in the wire format."""

    def __init__(self, schema_id: int, parsed: Any) -> None:
        self.schema_id = schema_id
        self._parsed = parsed
        self._header = HEADER.pack(MAGIC_BYTE, schema_id)
        self._append = writer_for(parsed).append  # compiled per schema; fastavro where it cannot be

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buffer = bytearray(self._header)
        try:
            self._append(buffer, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
            raise InvalidRecord(f"record does not match schema {self.schema_id}: {error}") from error
        return bytes(buffer)


class AvroSerde:
    """Encoders per subject and a decoder for any schema id, over one registry client."""

    def __init__(self, registry: RegistryLike, *, auto_register: bool = True) -> None:
        self.registry = registry
        self.auto_register = auto_register
        self._by_id: dict[int, Any] = {}
        self._encoders: dict[tuple[str, str], Encoder] = {}
        self._contract_errors: dict[tuple[int, str], str | None] = {}
        self._lock = threading.Lock()

    @staticmethod
    def parse(schema: Mapping[str, Any] | str) -> Any:
        raw = json.loads(schema) if isinstance(schema, str) else dict(schema)
        return fastavro.parse_schema(raw)

    def encoder(self, subject: str, schema: Mapping[str, Any] | str) -> Encoder:
        """Register (or look up, when auto-registration is off) ``schema`` under ``subject``; cached."""
        text = schema if isinstance(schema, str) else json.dumps(schema, separators=(",", ":"))
        cached = self._encoders.get((subject, text))
        if cached is not None:
            return cached
        parsed = self.parse(text)
        try:
            if self.auto_register:
                schema_id = self.registry.register_schema(subject, Schema(text, "AVRO"))
            else:
                schema_id = self.registry.lookup_schema(subject, Schema(text, "AVRO")).schema_id
        except SchemaRegistryError as error:
            raise UnknownSchema(f"subject {subject}: {error}") from error
        with self._lock:
            parsed = self._by_id.setdefault(schema_id, parsed)
            encoder = self._encoders.setdefault((subject, text), Encoder(schema_id, parsed))
        return encoder

    def writer_schema(self, schema_id: int) -> Any:
        parsed = self._by_id.get(schema_id)
        if parsed is not None:
            return parsed
        try:
            registered = self.registry.get_schema(schema_id)
        except SchemaRegistryError as error:
            raise UnknownSchema(f"schema id {schema_id} is unknown to the registry: {error}") from error
        if (registered.schema_type or "AVRO") != "AVRO":
            raise UnknownSchema(f"schema id {schema_id} is {registered.schema_type}, not AVRO")
        parsed = self.parse(registered.schema_str or "")
        with self._lock:
            self._by_id[schema_id] = parsed
        return parsed

    def check_contract(self, schema_id: int, topic: str) -> None:
        """Raise ``WrongContract`` unless ``schema_id`` is a version (deleted ones included: records written before
        the deletion stay valid) of ``topic``'s value subject. The registry is asked once per schema id and topic.

        Every producer of the platform registers its schema under the topic's subject (TopicNameStrategy), so a
        schema registered only elsewhere is another contract's, whose values the topic's consumers cannot handle
        (a sink's target may even refuse them)."""
        key = (schema_id, topic)
        if key not in self._contract_errors:
            subject = subject_for(topic)
            try:
                subjects = self.registry.get_subjects_by_schema_id(schema_id, subject_name=subject, deleted=True)
            except SchemaRegistryError as error:
                if error.http_status_code != 404:
                    raise
                subjects = []
            error_text = None
            if subject not in subjects:
                error_text = (
                    f"schema id {schema_id} is not a version of subject {subject} "
                    f"(registered under {', '.join(self._subjects_of(schema_id)) or 'no subject'})"
                )
            with self._lock:
                self._contract_errors[key] = error_text
        found = self._contract_errors[key]
        if found is not None:
            raise WrongContract(found)

    def _subjects_of(self, schema_id: int) -> list[str]:
        """The subjects ``schema_id`` is registered under (for the dead letter's message)."""
        try:
            return list(self.registry.get_subjects_by_schema_id(schema_id, deleted=True))[:5]
        except SchemaRegistryError:
            return []

    def decode(self, data: bytes | None, reader_schema: Any | None = None, topic: str | None = None) -> dict[str, Any]:
        """Decode a wire-format payload; raises a ``SerdeError`` for anything that is not one, and with ``topic``
        ``WrongContract`` for a record of another contract than the topic's (``check_contract``)."""
        if data is None:
            raise UndecodableRecord("record has no value (tombstone)")
        schema_id = schema_id_of(data)
        writer = self.writer_schema(schema_id)
        if topic is not None:
            self.check_contract(schema_id, topic)
        compiled = reader_for(writer) if reader_schema is None else None
        if compiled is not None:
            try:
                record, end = compiled.read(data, HEADER.size)
            except Exception as error:  # corrupt bodies fail in many ways
                raise UndecodableRecord(f"body does not decode with schema {schema_id}: {error!r}") from error
            if end != len(data):
                raise UndecodableRecord(f"{len(data) - end} trailing bytes after a record of schema {schema_id}")
            if not isinstance(record, dict):
                raise UndecodableRecord(f"schema {schema_id} is not a record schema")
            return record
        buffer = io.BytesIO(data)
        buffer.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(buffer, writer, reader_schema)
        except Exception as error:  # fastavro raises many types for corrupt bodies
            raise UndecodableRecord(f"body does not decode with schema {schema_id}: {error!r}") from error
        if buffer.tell() != len(data):
            raise UndecodableRecord(f"{len(data) - buffer.tell()} trailing bytes after a record of schema {schema_id}")
        if not isinstance(record, dict):
            raise UndecodableRecord(f"schema {schema_id} is not a record schema")
        return record


def subject_for(topic: str) -> str:
    """TopicNameStrategy: the value subject of ``topic``."""
    return f"{topic}-value"
