"""Start-up reachability of the endpoints a service depends on, each named by the setting that points at it.

Every entrypoint imports this module (through ``services.common.entrypoint``), the batch jobs' environments too:
the clients a probe needs are imported by that probe only.

A service checks its endpoints once, before it logs or builds any client: an endpoint that does not answer within
``STARTUP_TIMEOUT_S`` ends the process with one line naming the setting and the address (never a credential) and a
non-zero status (see ``services.common.entrypoint``). Outages after start-up are a different matter: consumers pause
and retry (backpressure) instead of exiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.settings import KafkaSettings, SchemaRegistrySettings, redact

if TYPE_CHECKING:
    from confluent_kafka import KafkaError

Probe = Callable[[float], None]


class UnreachableEndpoint(Exception):
    """An endpoint that did not answer at start-up."""

    def __init__(self, variable: str, address: str, reason: str) -> None:
        super().__init__(variable, address, reason)
        self.variable, self.address, self.reason = variable, address, reason

    def __str__(self) -> str:
        return f"unreachable endpoint: {self.variable} ({self.address}): {self.reason}"


@dataclass(frozen=True)
class Endpoint:
    """One dependency: the setting naming it, its address (credentials removed) and a probe that raises on failure."""

    variable: str
    address: str
    probe: Probe


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def require_reachable(endpoints: Sequence[Endpoint], timeout_s: float) -> None:
    """Probe every endpoint at once; the first that fails (in the given order) raises ``UnreachableEndpoint``."""
    if not endpoints:
        return
    with ThreadPoolExecutor(max_workers=len(endpoints), thread_name_prefix="endpoint-probe") as pool:
        futures = [pool.submit(endpoint.probe, timeout_s) for endpoint in endpoints]
        for endpoint, future in zip(endpoints, futures, strict=True):
            try:
                future.result()
            except UnreachableEndpoint:
                raise
            except Exception as error:  # each client has its own errors: all mean "not reachable"
                raise UnreachableEndpoint(endpoint.variable, endpoint.address, _one_line(error)) from error


def _quiet_logger() -> logging.Logger:
    """A logger that swallows librdkafka's own lines (the one-line report says what went wrong)."""
    logger = logging.getLogger("services.common.endpoints.librdkafka")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def kafka_endpoint(settings: KafkaSettings) -> Endpoint:
    """A Kafka cluster: reachable once it returns metadata (with SASL, after authenticating)."""
    variable = f"{settings.model_config.get('env_prefix', '')}BOOTSTRAP_SERVERS".upper()

    def probe(timeout_s: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        errors: list[KafkaError] = []
        config: dict[str, Any] = {
            **settings.client_config(),
            "logger": _quiet_logger(),
            "error_cb": errors.append,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        }
        admin = AdminClient(config)
        try:
            admin.list_topics(timeout=timeout_s)
        except KafkaException as error:
            admin.poll(0.1)  # serves the error callback: the client's own account of why (refused, authentication)
            reason = errors[-1].str() if errors else _one_line(error)
            raise UnreachableEndpoint(variable, settings.bootstrap_servers, reason) from error

    return Endpoint(variable, settings.bootstrap_servers, probe)


def http_endpoint(variable: str, url: str, path: str = "/", ca_location: str | None = None) -> Endpoint:
    """An HTTP service: reachable once it answers anything at ``path`` (any status: it is there); over https its
    certificate must be trusted (the CAs of ``ca_location``, a PEM file, else the system's)."""

    def probe(timeout_s: float) -> None:
        import ssl

        import httpx

        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_location) if ca_location else True
        httpx.get(url.rstrip("/") + path, timeout=timeout_s, verify=verify)

    return Endpoint(variable, redact(url), probe)


def registry_endpoint(settings: SchemaRegistrySettings) -> Endpoint:
    """The Schema Registry (its root answers without authentication on Confluent's API)."""
    return http_endpoint("SCHEMA_REGISTRY_URL", settings.url, ca_location=settings.ssl_ca_location)


def postgres_endpoint(variable: str, dsn: str) -> Endpoint:
    """A PostgreSQL database: reachable once a connection opens."""

    def probe(timeout_s: float) -> None:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))):
            pass

    return Endpoint(variable, redact(dsn), probe)
