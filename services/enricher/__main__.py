"""Entrypoint: ``python -m services.enricher`` (runs until SIGTERM/SIGINT, then drains, commits and exits 0)."""

from __future__ import annotations

import logging
import sys

import faust

from services.common.endpoints import kafka_endpoint, registry_endpoint, require_reachable
from services.common.entrypoint import run_entrypoint
from services.common.kafka import group_instance_id
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings, ServiceSettings, secret_values
from services.common.tracing import configure_tracing
from services.enricher.app import SERVICE, build_enricher
from services.enricher.settings import SOURCE_TOPICS, EnricherSettings

log = logging.getLogger("services.enricher")


def main() -> int:
    service = ServiceSettings(service_name=SERVICE)
    settings = EnricherSettings()
    settings = settings.model_copy(update={"instance_id": group_instance_id(SERVICE, settings.instance_id)})
    kafka, registry = KafkaSettings(), SchemaRegistrySettings()
    require_reachable([kafka_endpoint(kafka), registry_endpoint(registry)], service.startup_timeout_s)
    configure_logging(service.service_name, service.log_level, secrets=secret_values(kafka, registry))
    configure_tracing(service.service_name, service.otel_exporter)
    metrics = ServiceMetrics(service.service_name)
    enricher = build_enricher(settings, kafka, registry_client(registry), metrics=metrics)
    enricher.shutdown.enforce(service.shutdown_timeout_s)
    server = MetricsServer.for_service(metrics, service, live=enricher.live, ready=enricher.ready).start()
    log.info(
        "enricher starting",
        extra={
            "app_id": settings.app_id,
            "store": settings.store,
            "metrics_port": server.port,
            "sources": [settings.source(kind) for kind in SOURCE_TOPICS],
        },
    )
    worker = faust.Worker(
        enricher.app,
        loglevel=service.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    finally:
        server.stop()
    log.info("enricher stopped")
    return code


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
