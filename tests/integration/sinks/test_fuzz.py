"""Bad input to each sink (the shared sink framework's decoding, the file sinks' body checks, dead letters): every
kind of bad record goes to the dead-letter topic with its reason, every valid one lands once, the sink keeps running.
One sink process per sink."""

from __future__ import annotations

import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.catalogue import example, load_schema
from services.common.dlq import read_dead_letters
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.fuzz import fuzz_cases, tally
from tests.integration.processes import service_process, wait_for
from tests.integration.sinks.helpers import PRODUCT_VIEW, consumer_lag
from tests.integration.sinks.targets import SINKS, SinkUnderTest

pytestmark = pytest.mark.integration

CLICK = "com.freightline.web.ClickstreamEvent"  # another contract, with an envelope (decimals left out: see below)


def _ingest_before_event(record: dict[str, Any]) -> dict[str, Any]:
    record["metadata"]["ingest_time"] = record["metadata"]["event_time"].replace(year=1999)
    return record


def _empty(field_name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def breaker(record: dict[str, Any]) -> dict[str, Any]:
        record[field_name] = ""
        return record

    return breaker


@pytest.mark.parametrize("module", SINKS)
def test_every_bad_record_is_dead_lettered_with_its_reason_and_nothing_else_is_lost(
    module: str, sink_env: dict[str, str], make_sink: Callable[[str, str, int], SinkUnderTest], tmp_path: Path
) -> None:
    sink_under_test = make_sink(module, "fuzz", 2)
    topic = sink_under_test.topic
    env = sink_under_test.env()
    kafka = KafkaSettings(bootstrap_servers=sink_env["KAFKA_BOOTSTRAP_SERVERS"])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=sink_env["SCHEMA_REGISTRY_URL"])))
    view = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
    click = serde.encoder(subject_for(f"{topic}-clicks"), load_schema(CLICK))

    def a_click() -> bytes:
        record = copy.deepcopy(example(CLICK))
        record["metadata"]["event_id"] = uuid.uuid4()
        record["details"] = None
        return click.encode(record)

    cases = fuzz_cases(
        example(PRODUCT_VIEW),
        view.encode,
        other_contract=a_click,
        invariant_breakers={"ingest_before_event": _ingest_before_event, "empty_product_id": _empty("product_id")},
        huge_field="device_id",
    )
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "message.max.bytes": 2_000_000})
    for case in cases:
        producer.produce(topic, case.value, case.key, headers=case.headers or None)
    assert producer.flush(60) == 0

    with service_process(module, env, tmp_path / "sink.log") as sink:
        wait_for(lambda: consumer_lag(sink_env, sink_under_test.group, topic) == 0, 240, what="all consumed")
        assert sink.alive(), sink.log()
        assert sink.stop() == 0, sink.log()

    dead: dict[bytes, list[str]] = defaultdict(list)
    for letter in read_dead_letters(kafka, serde, f"{topic}.dlq"):
        dead[bytes(letter.envelope["original_key"])].append(letter.reason)
    landed: Mapping[str, int] = Counter(str(event_id) for event_id in sink_under_test.landed())
    result = tally(cases, dead, landed)
    print(f"\n{module} fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
