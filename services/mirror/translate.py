"""Schema id translation between the source cluster's registry and the destination's.

A mirrored value keeps its Avro body byte for byte; only the 5-byte header changes. The writer schema is
fetched by id from the source registry, registered under the destination subject (``<dest topic>-value``)
and the header rewritten to the destination id. Mappings are cached per (subject, source id): the registries
are asked once per schema and process. With a single registry the ids pass through unchanged.
"""

from __future__ import annotations

import logging
import threading

from services.common.registry import Schema, SchemaRegistryError
from services.common.serde import RegistryLike, UnknownSchema, schema_id_of, with_schema_id

log = logging.getLogger(__name__)


class IncompatibleSchema(UnknownSchema):
    """The destination registry refused the writer schema under the destination subject."""

    kind = "incompatible_schema"


class SchemaTranslator:
    """Maps wire-format values from source schema ids to destination schema ids."""

    def __init__(
        self,
        source: RegistryLike | None,
        destination: RegistryLike,
        *,
        register_destination_subjects: bool = True,
    ) -> None:
        self.source = source
        self.destination = destination
        self.register_destination_subjects = register_destination_subjects
        self._ids: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self.registrations = 0

    @property
    def passthrough(self) -> bool:
        return self.source is None

    def translate(self, subject: str, value: bytes) -> bytes:
        """``value`` with its schema id valid in the destination registry.

        Raises ``UndecodableRecord`` when ``value`` is not in the wire format, ``UnknownSchema`` when the
        source registry does not know its id, ``IncompatibleSchema`` when the destination refuses it.
        """
        source_id = schema_id_of(value)
        target = self._ids.get((subject, source_id))
        if target is None:
            target = self._map(subject, source_id)
        return value if target == source_id else with_schema_id(value, target)

    def _map(self, subject: str, source_id: int) -> int:
        registry = self.source or self.destination
        try:
            schema = registry.get_schema(source_id)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                raise UnknownSchema(f"schema id {source_id} is unknown to the source registry") from error
            raise
        target = source_id
        if self.source is not None or self.register_destination_subjects:
            to_register = Schema(schema.schema_str, schema.schema_type or "AVRO", schema.references or [])
            try:
                registered = self.destination.register_schema(subject, to_register)
            except SchemaRegistryError as error:
                if self.source is None:
                    # One registry: the id is valid as it is; the subject is a convenience only.
                    log.warning("could not register schema %d under %s: %s", source_id, subject, error)
                    registered = source_id
                elif error.http_status_code in (409, 422):
                    raise IncompatibleSchema(
                        f"destination registry refused schema {source_id} under {subject}: {error}"
                    ) from error
                else:
                    raise
            self.registrations += 1
            if self.source is not None:
                target = registered
        log.info("schema id %d maps to %d under %s", source_id, target, subject)
        with self._lock:
            self._ids[(subject, source_id)] = target
        return target
