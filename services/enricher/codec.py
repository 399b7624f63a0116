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

from faust.serializers.codecs import Codec

from services.common.serde import AvroSerde, Encoder, SerdeError


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
