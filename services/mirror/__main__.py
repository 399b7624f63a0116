"""Entrypoint: ``python -m services.mirror`` (runs until SIGTERM/SIGINT, then flushes, commits and exits 0)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from confluent_kafka.admin import AdminClient

from services.common.deadletter import DeadLetterPublisher
from services.common.endpoints import http_endpoint, kafka_endpoint, registry_endpoint, require_reachable
from services.common.entrypoint import CONFIGURATION_ERROR, run_entrypoint
from services.common.kafka import ConsumerLoop, consumer_config, group_instance_id
from services.common.lifecycle import Shutdown
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import AvroSerde, registry_client
from services.common.settings import (
    KafkaSettings,
    RemoteKafkaSettings,
    SchemaRegistrySettings,
    ServiceSettings,
    secret_values,
)
from services.common.tracing import configure_service_tracing
from services.mirror.mirror import (
    SERVICE,
    MirrorMetrics,
    SourceHealth,
    TopicMirror,
    destination_producer,
    exactly_once,
)
from services.mirror.settings import MirrorSettings
from services.mirror.translate import SchemaTranslator

log = logging.getLogger("services.mirror")


def main() -> int:
    service = ServiceSettings(service_name=SERVICE)
    settings = MirrorSettings()
    remote = RemoteKafkaSettings()
    local = KafkaSettings()
    registry_settings = SchemaRegistrySettings()
    try:
        remote_config = remote.client_config()
    except ValueError as error:
        print(f"configuration error: remote cluster settings are incomplete: {error}", file=sys.stderr)
        return CONFIGURATION_ERROR
    source_registry_settings = settings.source_registry(registry_settings)
    endpoints = [kafka_endpoint(remote), kafka_endpoint(local), registry_endpoint(registry_settings)]
    if source_registry_settings is not None:
        endpoints.append(http_endpoint("MIRROR_SOURCE_SCHEMA_REGISTRY_URL", source_registry_settings.url))
    require_reachable(endpoints, service.startup_timeout_s)
    configure_logging(
        service.service_name,
        service.log_level,
        secrets=secret_values(settings, remote, local, registry_settings, source_registry_settings),
    )
    configure_service_tracing(service)

    shutdown = Shutdown().enforce(service.shutdown_timeout_s).install()
    metrics = ServiceMetrics(service.service_name)
    mirror_metrics = MirrorMetrics(metrics)
    health = SourceHealth(mirror_metrics, remote.sasl_username)
    admin_config: dict[str, Any] = {**remote_config, "error_cb": health.on_error}
    destination_registry = registry_client(registry_settings)
    translator = SchemaTranslator(
        registry_client(source_registry_settings) if source_registry_settings else None,
        destination_registry,
        register_destination_subjects=settings.register_destination_subjects,
    )
    instance_id = group_instance_id(SERVICE, settings.instance_id)
    if settings.exactly_once and not instance_id:
        print(
            "configuration error: MIRROR_EXACTLY_ONCE needs MIRROR_INSTANCE_ID (it is the transactional id that "
            "fences a restarted instance's predecessor); set one, or MIRROR_EXACTLY_ONCE=false",
            file=sys.stderr,
        )
        return CONFIGURATION_ERROR
    serde = AvroSerde(destination_registry)
    # transactional.id: unique per instance and group (ids are cluster-wide; a restart of the same instance reuses
    # it and fences its predecessor)
    transactional_id = f"{instance_id}-{settings.group_id}" if settings.exactly_once else None
    producer = destination_producer(local, metrics, transactional_id)
    mirror = TopicMirror(
        source_admin=AdminClient(admin_config),
        destination_kafka=local,
        producer=producer,
        translator=translator,
        destination_for=settings.destination,
        metrics=metrics,
        mirror_metrics=mirror_metrics,
        dead_letters=DeadLetterPublisher(producer, serde, service=SERVICE, metrics=metrics),
        create_topics=settings.create_topics,
    )
    config = consumer_config(
        remote,
        settings.group_id,
        f"{SERVICE}-consumer",
        instance_id=instance_id,
        error_cb=health.on_error,
        stats_cb=health.on_stats,
        **{"statistics.interval.ms": settings.stats_interval_ms, "topic.metadata.refresh.interval.ms": 10_000},
    )

    def heartbeat(records: int) -> None:
        if health.connected or records:
            mirror_metrics.heartbeat.set(time.time())

    loop = ConsumerLoop(
        config,
        settings.source_topics(),
        mirror.handle,
        shutdown=shutdown,
        producer=producer,
        metrics=metrics,
        batch_size=settings.batch_size,
        batch_timeout_s=settings.batch_timeout_s,
        batch_idle_s=settings.batch_idle_s,
        lag_interval_s=settings.lag_interval_s,
        on_poll=heartbeat,
        transactions=exactly_once(producer, local, serde, settings.group_id, settings.offsets_topic)
        if settings.exactly_once
        else None,
    )
    server = MetricsServer.for_service(metrics, service, ready=lambda: health.ready and not shutdown.requested).start()
    log.info(
        "mirroring %s from %s to %s (schema ids %s)",
        settings.source_topics(),
        remote.bootstrap_servers,
        local.bootstrap_servers,
        "pass through" if translator.passthrough else "translated",
    )
    try:
        loop.run()
    finally:
        server.stop()
    log.info(
        "mirror stopped (%s): %d records in %d committed batches",
        shutdown.reason,
        loop.processed,
        loop.committed_batches,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
