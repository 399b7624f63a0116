"""Entrypoint: ``python -m services.schema_registry`` (configuration from ``SCHEMA_REGISTRY_SERVER_*``)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn
from psycopg_pool import AsyncConnectionPool

from services.common.endpoints import postgres_endpoint, require_reachable
from services.common.entrypoint import run_entrypoint
from services.common.logging import configure_logging

from .app import RegistryApp
from .registry import Registry
from .settings import RegistryServerSettings

log = logging.getLogger("services.schema_registry")


def build_app(settings: RegistryServerSettings) -> RegistryApp:
    pool = AsyncConnectionPool(
        settings.database_dsn,
        min_size=1,
        max_size=settings.pool_max_size,
        open=False,
        kwargs={"autocommit": True},
        name="schema-registry",
    )
    registry = Registry(pool, settings.default_compatibility)
    return RegistryApp(
        registry, users=settings.users(), read_only=settings.read_only(), max_body_bytes=settings.max_body_bytes
    )


def app_factory() -> RegistryApp:
    """Factory uvicorn calls in each worker process."""
    settings = RegistryServerSettings()
    configure_logging("schema-registry", settings.log_level, secrets=settings.secret_values())
    return build_app(settings)


def main() -> None:
    settings = RegistryServerSettings()
    settings.users()  # fail fast on a malformed user list
    require_reachable(
        [postgres_endpoint("SCHEMA_REGISTRY_SERVER_DATABASE_DSN", settings.database_dsn)], settings.startup_timeout_s
    )
    configure_logging("schema-registry", settings.log_level, secrets=settings.secret_values())
    log.info(
        "starting schema registry on %s://%s:%d (workers=%d, default compatibility %s, auth %s)",
        "https" if settings.https else "http",
        settings.host,
        settings.port,
        settings.workers,
        settings.default_compatibility.value,
        f"on, {len(settings.users()) - len(settings.read_only())} admin and {len(settings.read_only())} read-only users"
        if settings.users()
        else "off",
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": 10,
        "backlog": 4096,
    }
    if settings.https:  # HTTPS only: a plain HTTP request to the port fails its TLS handshake
        common.update(ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile)
    if settings.workers > 1:
        uvicorn.run("services.schema_registry.__main__:app_factory", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(build_app(settings), **common)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
