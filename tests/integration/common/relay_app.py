"""A minimal service built only from the shared library: decode, re-encode, forward, dead-letter.

Run as ``python -m tests.integration.common.relay_app`` with RELAY_INPUT, RELAY_OUTPUT, RELAY_GROUP and the
standard KAFKA_* / SCHEMA_REGISTRY_* settings. RELAY_BATCH_DELAY_S slows it down so tests can kill it mid-stream;
RELAY_INSTANCE_ID makes it a static group member.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common import tracing
from services.common.deadletter import DeadLetterPublisher, decoded
from services.common.kafka import (
    ConsumerLoop,
    Producer,
    consumer_config,
    group_instance_id,
    headers_of,
    producer_config,
)
from services.common.lifecycle import Shutdown
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings

log = logging.getLogger("relay")


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_")

    input: str
    output: str
    group: str
    batch_size: int = 200
    batch_delay_s: float = Field(default=0.0, ge=0)
    instance_id: str = ""  # static group membership (group.instance.id) when set
    session_timeout_ms: int = 30_000


def main() -> None:
    configure_logging("relay")
    settings = RelaySettings()  # type: ignore[call-arg]
    kafka = KafkaSettings()
    shutdown = Shutdown().install()
    metrics = ServiceMetrics("relay")
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    producer = Producer(producer_config(kafka, "relay"), metrics)
    serde = AvroSerde(registry_client(SchemaRegistrySettings()))
    dead_letters = DeadLetterPublisher(producer, serde, service="relay", metrics=metrics)
    encoders: dict[int, object] = {}

    def handle(batch: list[Message]) -> None:
        for message, record in decoded(batch, serde, dead_letters):
            writer = serde.writer_schema(int.from_bytes((message.value() or b"")[1:5], "big"))
            encoder = encoders.get(id(writer))
            if encoder is None:
                encoder = serde.encoder(subject_for(settings.output), writer)
                encoders[id(writer)] = encoder
            value = encoder.encode(record)  # type: ignore[attr-defined]
            producer.produce(
                settings.output,
                value,
                message.key(),
                partition=message.partition(),
                context=tracing.extract(headers_of(message)),
            )
            metrics.record_in(message.topic() or "?")
        if settings.batch_delay_s:
            time.sleep(settings.batch_delay_s)

    loop = ConsumerLoop(
        consumer_config(
            kafka,
            settings.group,
            "relay",
            instance_id=group_instance_id("relay", settings.instance_id),
            **{"session.timeout.ms": settings.session_timeout_ms},
        ),
        [settings.input],
        handle,
        shutdown=shutdown,
        producer=producer,
        metrics=metrics,
        batch_size=settings.batch_size,
    )
    try:
        loop.run()
    finally:
        server.stop()
    log.info("stopped after %d records in %d batches", loop.processed, loop.committed_batches)


if __name__ == "__main__":
    main()
