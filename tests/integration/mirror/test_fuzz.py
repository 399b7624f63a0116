"""Bad input to the mirror: it copies what it cannot decode as it is (a copier does not judge bodies), dead-letters a
record whose schema id the source registry does not know (it cannot be translated), loses and doubles nothing, and
keeps running."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from services.common.kafka import ensure_topics
from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.crash import group_lag
from tests.integration.fuzz import dead_letter_reasons, produce_cases, product_view_cases, tally
from tests.integration.mirror.conftest import MirrorProcess, MirrorTopics, mirror_settings
from tests.integration.processes import read_topic, wait_for

pytestmark = pytest.mark.integration


def test_bad_input_is_copied_or_dead_lettered_once_and_the_mirror_keeps_running(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    mirror_topics: MirrorTopics,
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    source, remote = mirror_topics.source, mirror_topics.remote
    ensure_topics(KafkaSettings.from_client_config(remote), [(source, 2, {})])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=mirror_registry_url)))
    cases = product_view_cases(serde, source, copier=True)
    produce_cases(remote, source, cases)

    env = {**stack_env, "SCHEMA_REGISTRY_URL": mirror_registry_url}
    settings = mirror_settings(source, mirror_topics.destination, mirror_topics.group)
    mirror = mirror_process(env, **settings).start()
    wait_for(lambda: group_lag(remote, mirror_topics.group, [source]) == 0, 240, what="all copied")
    assert mirror.alive()
    assert mirror.stop() == 0

    local = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    destination = read_topic({"bootstrap.servers": local.bootstrap_servers}, mirror_topics.destination)
    copied = Counter(bytes(message.key() or b"") for message in destination)
    result = tally(cases, dead_letter_reasons(local, serde, f"{source}.dlq"), landed_keys=copied)
    print(f"\nmirror fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
