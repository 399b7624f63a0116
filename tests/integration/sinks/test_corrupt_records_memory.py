"""The sinks' corrupt-record path keeps memory bounded: records whose metadata prefix does not read go through
``decode_batch`` (consumed from the real cluster, dead-lettered through the real producer).

Each dead letter formats its error's traceback (milliseconds per record here), so the test runs a few thousand
records rather than 100,000: enough for the defect it guards against (one exception object re-raised for every
record, its traceback growing by a frame per raise and keeping every batch alive) to show both in the memory
held and in the dead letters' stacks, which grow with every record."""

from __future__ import annotations

import gc
import logging
import tracemalloc
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer

from services.common.deadletter import DeadLetterPublisher
from services.common.kafka import Producer, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from services.common.sinks.runner import SinkContext, SinkMetrics, decode_batch
from tests.integration.processes import dead_letters, decode_dead_letter
from tests.integration.sinks.helpers import PRODUCT_VIEW, example_record

pytestmark = pytest.mark.integration

RECORDS = 4000
FIRST_CHECK = 200
WARM_UP = 1000
# measured: 0.8 MiB over the 3,000 records after the warm-up (the dead-letter de-duplication keys, bounded)
MAX_GROWTH_BYTES = 4 * 1024 * 1024


def test_corrupt_records_keep_memory_bounded(
    stack_env: dict[str, str], new_topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    from schemas.catalogue import load_schema

    caplog.set_level(logging.ERROR, "services.common.deadletter")  # captured log lines would be growth too

    topic = new_topic("corrupt-memory", 1)
    kafka = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"])))
    good = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW)).encode(example_record())
    corrupt = good[:8]  # the wire header and a metadata prefix cut short: read in full, then dead-lettered
    producer = Producer(producer_config(kafka, "corrupt-memory", **{"linger.ms": 20}))
    for _ in range(RECORDS):
        producer.produce(topic, corrupt, "corrupt")
    producer.flush(120)

    context = SinkContext(
        service="sink-memory-test",
        serde=serde,
        producer=producer,
        dead_letters=DeadLetterPublisher(producer, serde, service="sink-memory-test"),
        metrics=SinkMetrics("sink-memory-test"),
    )
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"corrupt-memory-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    at_warm_up = 0
    tracemalloc.start()
    try:
        while seen < RECORDS:
            batch = [m for m in consumer.consume(50 if seen < FIRST_CHECK else 500, 5.0) if m.error() is None]
            assert decode_batch(batch, context, values=False) == []
            seen += len(batch)
            context.flush_dead_letters()
            if seen == FIRST_CHECK:  # fails fast: with the defect each record costs more than the one before
                _assert_stacks_do_not_grow(stack_env, topic, FIRST_CHECK, corrupt)
            if not at_warm_up and seen >= WARM_UP:
                gc.collect()
                at_warm_up = tracemalloc.get_traced_memory()[0]
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - at_warm_up
    finally:
        tracemalloc.stop()
        consumer.close()
    assert len(context._dead) == RECORDS  # every record was dead-lettered
    assert growth < MAX_GROWTH_BYTES, f"memory grew by {growth / 2**20:.1f} MiB over {RECORDS - WARM_UP} records"
    _assert_stacks_do_not_grow(stack_env, topic, RECORDS, corrupt)


def _assert_stacks_do_not_grow(env: dict[str, str], topic: str, expected: int, corrupt: bytes) -> None:
    letters = dead_letters(env, topic, expected)
    assert len(letters) == expected
    first, last = (decode_dead_letter(env, letters[i].value()) for i in (0, -1))
    assert first["original_value"] == last["original_value"] == corrupt
    assert len(last["error_stack"]) == len(first["error_stack"]), "the error's traceback grows with every record"
