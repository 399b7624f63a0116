"""Bad input to each sink (the shared sink framework's decoding, the file sinks' body checks, dead letters): every
kind of bad record (a record of another contract, with decimals, among them) goes to the dead-letter topic with its
reason, every valid one lands once, the sink keeps running.
One sink process per sink."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.fuzz import dead_letter_reasons, produce_cases, product_view_cases, tally
from tests.integration.processes import service_process, wait_for
from tests.integration.sinks.helpers import consumer_lag
from tests.integration.sinks.targets import SINKS, SinkUnderTest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("module", SINKS)
def test_every_bad_record_is_dead_lettered_with_its_reason_and_nothing_else_is_lost(
    module: str, sink_env: dict[str, str], make_sink: Callable[[str, str, int], SinkUnderTest], tmp_path: Path
) -> None:
    sink_under_test = make_sink(module, "fuzz", 2)
    topic = sink_under_test.topic
    kafka = KafkaSettings(bootstrap_servers=sink_env["KAFKA_BOOTSTRAP_SERVERS"])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=sink_env["SCHEMA_REGISTRY_URL"])))
    cases = product_view_cases(serde, topic, wrong_contract_reason="wrong_contract")
    produce_cases(kafka.client_config(), topic, cases)

    with service_process(module, sink_under_test.env(), tmp_path / "sink.log") as sink:
        wait_for(lambda: consumer_lag(sink_env, sink_under_test.group, topic) == 0, 240, what="all consumed")
        assert sink.alive(), sink.log()
        assert sink.stop() == 0, sink.log()

    landed = Counter(str(event_id) for event_id in sink_under_test.landed())
    result = tally(cases, dead_letter_reasons(kafka, serde, f"{topic}.dlq"), landed)
    print(f"\n{module} fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
