"""Deploy step: ``python -m services.schema_registry.contracts`` registers every subject of the topic catalogue on a
registry and sets its compatibility level (idempotent), as the registry's admin (``SCHEMA_REGISTRY_URL``,
``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO``, ``SCHEMA_REGISTRY_SSL_CA_LOCATION``). The services then only look schemas
up, as the read-only user with ``SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS=false``: this is what runs before them (a
Kubernetes Job, a compose one-shot service; ``freightline schemas register`` on the local stack).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.catalogue import TopicSpec, load_catalogue
from schemas.governance.register import Registration, register_all
from services.common.endpoints import registry_endpoint, require_reachable
from services.common.entrypoint import run_entrypoint
from services.common.settings import SchemaRegistrySettings

STARTUP_TIMEOUT_S = 120.0
"""How long the step waits for the registry to answer (it may start alongside)."""


def register_catalogue(
    settings: SchemaRegistrySettings, *, subject_prefix: str = "", topics: Iterable[TopicSpec] | None = None
) -> list[Registration]:
    """Register the catalogue's subjects (or those of ``topics``) as the user ``settings`` name."""
    return register_all(
        SchemaRegistryClient(settings.client_config()), load_catalogue(), subject_prefix=subject_prefix, topics=topics
    )


def main() -> int:
    settings = SchemaRegistrySettings()
    require_reachable([registry_endpoint(settings)], STARTUP_TIMEOUT_S)
    try:
        results = register_catalogue(settings)
    except SchemaRegistryError as error:
        print(f"registration failed: {error}", file=sys.stderr)
        return 1
    for item in results:
        print(f"{item.subject} -> id {item.schema_id}, version {item.version} ({item.compatibility})")
    return 0


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
