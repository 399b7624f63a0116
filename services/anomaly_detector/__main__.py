"""Entrypoint: ``python -m services.anomaly_detector`` runs both stages, each its own consumer loop thread (until
SIGTERM/SIGINT: both drain and commit, open windows are flushed, exit 0; either stage failing stops both)."""

from __future__ import annotations

import logging
import sys
import threading

from services.anomaly_detector.service import (
    DetectorService,
    RepartitionService,
    build_loop,
)
from services.anomaly_detector.settings import DetectorSettings
from services.anomaly_detector.topology import SERVICE
from services.common.endpoints import kafka_endpoint, registry_endpoint, require_reachable
from services.common.entrypoint import run_entrypoint
from services.common.kafka import ConsumerLoop, Producer, consumer_config, group_instance_id, producer_config
from services.common.lifecycle import Shutdown
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings, ServiceSettings, secret_values
from services.common.tracing import configure_tracing

log = logging.getLogger("services.anomaly_detector")


def run_stage(loop: ConsumerLoop, shutdown: Shutdown, failures: list[Exception]) -> None:
    try:
        loop.run()
    except Exception as error:
        log.exception("detector stage failed")
        failures.append(error)
        shutdown.request("a detector stage failed")


def main() -> int:
    service_settings = ServiceSettings(service_name=SERVICE)
    settings = DetectorSettings()
    kafka, registry = KafkaSettings(), SchemaRegistrySettings()
    require_reachable([kafka_endpoint(kafka), registry_endpoint(registry)], service_settings.startup_timeout_s)
    configure_logging(service_settings.service_name, service_settings.log_level, secrets=secret_values(kafka, registry))
    configure_tracing(service_settings.service_name, service_settings.otel_exporter)
    metrics = ServiceMetrics(service_settings.service_name)
    serde = AvroSerde(registry_client(registry))
    stage1 = RepartitionService(
        settings, Producer(producer_config(kafka, f"{SERVICE}-repartition-producer"), metrics), serde, metrics
    )
    producer = Producer(producer_config(kafka, f"{SERVICE}-producer"), metrics)
    service = DetectorService(settings, producer, serde, metrics)
    if settings.create_topics:
        service.ensure_topics(kafka)
    shutdown = Shutdown().enforce(service_settings.shutdown_timeout_s).install()
    server = MetricsServer.for_service(metrics, service_settings).start()
    # Static membership in both groups (one id per group: the same process id is a member of each).
    instance_id = group_instance_id(SERVICE, settings.instance_id)
    loops = {
        "repartition": build_loop(
            stage1,
            consumer_config(
                kafka, settings.repartition_group_id, f"{SERVICE}-repartition-consumer", instance_id=instance_id
            ),
            shutdown,
            settings.batch_size,
            batch_timeout_s=settings.batch_timeout_s,
            batch_idle_s=settings.batch_idle_s,
        ),
        "detection": build_loop(
            service,
            consumer_config(kafka, settings.group_id, f"{SERVICE}-consumer", instance_id=instance_id),
            shutdown,
            settings.batch_size,
            batch_timeout_s=settings.batch_timeout_s,
            batch_idle_s=settings.batch_idle_s,
        ),
    }
    failures: list[Exception] = []
    threads = [
        threading.Thread(target=run_stage, args=(loop, shutdown, failures), name=name) for name, loop in loops.items()
    ]
    log.info("anomaly detector: %s -> %s -> %s", stage1.input_topics, stage1.output, service.output)
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.5)  # short joins: the main thread keeps serving signals
        service.flush()  # windows still open at shutdown are evaluated on what they hold
    finally:
        server.stop()
    log.info("anomaly detector stopped: %d anomalies emitted", service.emitted)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
