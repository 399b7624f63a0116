"""Bad input to the mirror: it copies what it cannot decode as it is (a copier does not judge bodies), dead-letters a
record whose schema id the source registry does not know (it cannot be translated), loses and doubles nothing, and
keeps running."""

from __future__ import annotations

import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.catalogue import example, load_schema
from services.common.dlq import read_dead_letters
from services.common.kafka import ensure_topics
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.crash import group_lag
from tests.integration.fuzz import fuzz_cases, tally
from tests.integration.mirror.conftest import MirrorProcess, MirrorTopics, mirror_settings
from tests.integration.processes import read_topic, wait_for

pytestmark = pytest.mark.integration

PRODUCT_VIEW = "com.freightline.web.ProductView"
CLICK = "com.freightline.web.ClickstreamEvent"


def _ingest_before_event(record: dict[str, Any]) -> dict[str, Any]:
    record["metadata"]["ingest_time"] = record["metadata"]["event_time"].replace(year=1999)
    return record


def test_bad_input_is_copied_or_dead_lettered_once_and_the_mirror_keeps_running(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    mirror_topics: MirrorTopics,
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    source, destination, group, remote = (
        mirror_topics.source,
        mirror_topics.destination,
        mirror_topics.group,
        mirror_topics.remote,
    )
    ensure_topics(KafkaSettings.from_client_config(remote), [(source, 2, {})])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=mirror_registry_url)))
    view = serde.encoder(subject_for(source), load_schema(PRODUCT_VIEW))
    click = serde.encoder(subject_for(f"{source}-clicks"), load_schema(CLICK))

    def a_click() -> bytes:
        record = copy.deepcopy(example(CLICK))
        record["metadata"]["event_id"] = uuid.uuid4()
        return click.encode(record)

    cases = fuzz_cases(
        example(PRODUCT_VIEW),
        view.encode,
        other_contract=a_click,
        invariant_breakers={"ingest_before_event": _ingest_before_event},
        huge_field="device_id",
        copier=True,
    )
    producer = Producer({**remote, "enable.idempotence": True, "message.max.bytes": 2_000_000})
    for case in cases:
        producer.produce(source, case.value, case.key, headers=case.headers or None)
    assert producer.flush(60) == 0

    env = {**stack_env, "SCHEMA_REGISTRY_URL": mirror_registry_url}
    mirror = mirror_process(env, **mirror_settings(source, destination, group)).start()
    wait_for(lambda: group_lag(remote, group, [source]) == 0, 240, what="all copied")
    assert mirror.alive()
    assert mirror.stop() == 0

    local = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    dead: dict[bytes, list[str]] = defaultdict(list)
    for letter in read_dead_letters(local, serde, f"{source}.dlq"):
        dead[bytes(letter.envelope["original_key"])].append(letter.reason)
    copied = Counter(
        bytes(m.key() or b"") for m in read_topic({"bootstrap.servers": local.bootstrap_servers}, destination)
    )
    result = tally(cases, dead, landed_keys=copied)
    print(f"\nmirror fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
