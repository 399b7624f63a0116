"""Entrypoint: ``python -m services.anomaly_detector`` (until SIGTERM/SIGINT: flushes open windows, commits, exits)."""

from __future__ import annotations

import logging
import sys

from services.anomaly_detector.service import SERVICE, DetectorService, build_loop
from services.anomaly_detector.settings import DetectorSettings
from services.common.entrypoint import run_entrypoint
from services.common.kafka import Producer, consumer_config, producer_config
from services.common.lifecycle import Shutdown
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings, ServiceSettings
from services.common.tracing import configure_tracing

log = logging.getLogger("services.anomaly_detector")


def main() -> int:
    service_settings = ServiceSettings(service_name=SERVICE)
    configure_logging(service_settings.service_name, service_settings.log_level)
    configure_tracing(service_settings.service_name, service_settings.otel_exporter)
    settings = DetectorSettings()
    kafka = KafkaSettings()
    metrics = ServiceMetrics(service_settings.service_name)
    producer = Producer(producer_config(kafka, f"{SERVICE}-producer"), metrics)
    service = DetectorService(settings, producer, AvroSerde(registry_client(SchemaRegistrySettings())), metrics)
    if settings.create_topics:
        service.ensure_topics(kafka.client_config())
    shutdown = Shutdown().install()
    server = MetricsServer(metrics, service_settings.metrics_host, service_settings.metrics_port).start()
    loop = build_loop(
        service, consumer_config(kafka, settings.group_id, f"{SERVICE}-consumer"), shutdown, settings.batch_size
    )
    log.info("anomaly detector consuming %s", service.input_topics)
    try:
        loop.run()
        service.flush()  # windows still open at shutdown are evaluated on what they hold
    finally:
        server.stop()
    log.info("anomaly detector stopped: %d anomalies emitted", service.emitted)
    return 0


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
