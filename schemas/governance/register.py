"""Deploy step: register every catalogue subject on a Schema Registry and set its compatibility level."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka.schema_registry import Schema

from schemas.catalogue import Catalogue, TopicSpec, schema_text


class RegistryClientLike(Protocol):
    """confluent-kafka's ``SchemaRegistryClient`` or the services' own ``services.common.registry.RegistryClient``."""

    def set_compatibility(self, subject_name: str | None = ..., level: str | None = ...) -> Any: ...

    def get_compatibility(self, subject_name: str | None = ...) -> Any: ...

    def register_schema(self, subject_name: str, schema: Schema, normalize_schemas: bool = ...) -> int: ...

    def lookup_schema(self, subject_name: str, schema: Schema, normalize_schemas: bool = ...) -> Any: ...


@dataclass(frozen=True)
class Registration:
    subject: str
    schema_id: int
    version: int
    compatibility: str


def register_all(
    client: RegistryClientLike,
    catalogue: Catalogue,
    *,
    subject_prefix: str = "",
    topics: Iterable[TopicSpec] | None = None,
) -> list[Registration]:
    """Register each topic's value schema under ``<prefix><topic>-value``; idempotent.

    The subject's compatibility level is set first, so the registration itself is checked at the level
    the catalogue asks for. Registering an unchanged schema returns the existing id and version.
    """
    results = []
    for spec in topics if topics is not None else catalogue.topics:
        subject = f"{subject_prefix}{spec.subject}"
        schema = Schema(schema_text(spec.value_schema), schema_type="AVRO")
        client.set_compatibility(subject_name=subject, level=spec.compatibility)
        level = client.get_compatibility(subject_name=subject)
        schema_id = client.register_schema(subject, schema)
        registered = client.lookup_schema(subject, schema)
        results.append(
            Registration(
                subject=subject,
                schema_id=int(schema_id),
                version=int(registered.version or 0),
                compatibility=str(level),
            )
        )
    return results
