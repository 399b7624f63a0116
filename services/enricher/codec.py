"""Faust codec for Confluent wire-format Avro, on the shared serde (``services.common.serde``) and the registry.

``AvroCodec(serde, encoder)`` loads any wire-format payload (the writer schema is fetched by id and cached) and
dumps records with the encoder of one subject. Failures raise the shared ``SerdeError`` subclasses
(``UndecodableRecord``, ``UnknownSchema``, ``InvalidRecord``), whose ``kind`` names the dead-letter error type.

The agents read their source topics as raw bytes and decode with :meth:`AvroCodec.loads` themselves: a record
that does not decode goes to ``<topic>.dlq`` instead of reaching Faust's decode-error path (which would stop
the agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fastavro
import fastavro.schema
from faust.serializers.codecs import Codec

from services.common.avro_codegen import writer_for
from services.common.serde import (
    HEADER,
    MAGIC_BYTE,
    AvroSerde,
    Encoder,
    InvalidRecord,
    SerdeError,
    schema_id_of,
)


class AvroCodec(Codec):
    """Wire-format Avro: ``loads`` decodes any registered schema, ``dumps`` writes the encoder's schema."""

    def __init__(self, children: Any = None, *, serde: AvroSerde, encoder: Encoder | None = None) -> None:
        super().__init__(children, serde=serde, encoder=encoder)
        self.serde = serde
        self.encoder = encoder

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode one payload (a tombstone raises ``UndecodableRecord``)."""
        return self.serde.decode(data)

    def _loads(self, s: bytes) -> Any:
        return self.decode(s)

    def _dumps(self, s: Any) -> bytes:
        if self.encoder is None:
            raise SerdeError("this codec has no encoder: it only decodes")
        if not isinstance(s, Mapping):
            raise SerdeError(f"expected a record (mapping), got {type(s).__name__}")
        return self.encoder.encode(s)

    @property
    def schema_id(self) -> int | None:
        return None if self.encoder is None else self.encoder.schema_id


def decoding_codec(serde: AvroSerde) -> AvroCodec:
    """A codec that only decodes (for source topics)."""
    return AvroCodec(serde=serde)


def encoding_codec(serde: AvroSerde, subject: str, schema: Mapping[str, Any]) -> AvroCodec:
    """A codec writing ``schema``, registered (or looked up) under ``subject``."""
    return AvroCodec(serde=serde, encoder=serde.encoder(subject, schema))


class SplicingEncoder:
    """Writes enriched records ``{metadata, event, <attributes>...}`` reusing the source event's Avro body.

    A record's binary encoding is its fields' encodings in order, so an enriched record is
    ``header + metadata + event + attributes``. When a source payload was written with exactly the schema the
    enriched contract embeds as ``event`` (same parsing canonical form), its body is copied instead of being
    decoded back into values and re-encoded; any other writer schema (an older or newer version) goes through
    the full encoder. The first payload of each writer schema is encoded both ways, and that schema is spliced
    only if the bytes are equal (a contract whose shape does not allow splicing is always fully encoded).
    """

    def __init__(
        self,
        serde: AvroSerde,
        encoder: Encoder,
        enriched_schema: Mapping[str, Any],
        event_schema: Mapping[str, Any],
    ) -> None:
        """``event_schema``: the source contract (standalone) the enriched contract embeds as ``event``."""
        self.serde = serde
        self.encoder = encoder
        self.header = HEADER.pack(MAGIC_BYTE, encoder.schema_id)
        self.event_form = fastavro.schema.to_parsing_canonical_form(dict(event_schema))
        self._splice_by_id: dict[int, bool] = {}
        self._head: Any = None
        self._tail: Any = None
        fields = list(enriched_schema["fields"])
        shape = [field["name"] for field in fields[:2]]
        metadata_type = fields[0]["type"]
        if shape != ["metadata", "event"] or not isinstance(metadata_type, dict):
            return
        try:
            named: dict[str, Any] = {}
            head = fastavro.parse_schema(metadata_type, named)
            fastavro.parse_schema(fields[1]["type"], named)
            name = str(enriched_schema["name"])
            tail = fastavro.parse_schema({"type": "record", "name": f"{name}Tail", "fields": fields[2:]}, named)
        except (fastavro.schema.SchemaParseException, ValueError, KeyError, TypeError):
            return
        self._head = writer_for(head).append
        self._tail = writer_for(tail).append

    @property
    def splicing(self) -> bool:
        """Whether payloads of the contract's own schema are spliced (False: every record is fully encoded)."""
        return self._head is not None

    def encode(self, record: Mapping[str, Any], payload: bytes) -> bytes:
        """Wire-format bytes of the enriched ``record`` whose ``event`` was decoded from ``payload``."""
        schema_id = schema_id_of(payload)
        splice = self._splice_by_id.get(schema_id)
        if splice:
            return self._spliced(record, payload)
        full = self.encoder.encode(record)
        if splice is None:
            # First payload of this writer schema: splice only if it is the embedded schema and the spliced
            # bytes of this very record equal its full encoding.
            writer = self.serde.writer_schema(schema_id)
            splice = self._head is not None and fastavro.schema.to_parsing_canonical_form(writer) == self.event_form
            if splice:
                try:
                    splice = self._spliced(record, payload) == full
                except SerdeError:
                    splice = False
            self._splice_by_id[schema_id] = splice
        return full

    def _spliced(self, record: Mapping[str, Any], payload: bytes) -> bytes:
        buffer = bytearray(self.header)
        try:
            self._head(buffer, record["metadata"])
            buffer += memoryview(payload)[HEADER.size :]
            self._tail(buffer, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
            raise InvalidRecord(f"record does not match schema {self.encoder.schema_id}: {error}") from error
        return bytes(buffer)

    def splices(self, payload: bytes) -> bool | None:
        """Whether payloads of ``payload``'s writer schema are spliced (None: none of them was encoded yet)."""
        return self._splice_by_id.get(schema_id_of(payload))
