"""Bad input to the anomaly detector's product-view input: every bad record (a record of another contract among
them) is dead-lettered with its reason, every valid view is forwarded to the repartition topic once, both stages
keep running."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas import topics
from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.anomaly_detector.topology import SERVICE
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from tests.integration.enricher import support
from tests.integration.fuzz import dead_letter_reasons, produce_cases, product_view_cases, tally
from tests.integration.lifecycle import group_progress
from tests.integration.processes import service_process, wait_for

pytestmark = pytest.mark.integration


def test_bad_views_are_dead_lettered_with_their_reason_and_every_valid_view_is_forwarded_once(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("det-fuzz") + "-"
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    kafka = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    inputs = [settings.topic(name) for name in INPUT_TOPICS]
    ensure_topics(kafka, [(topic, 3, {}) for topic in inputs])
    views = settings.topic(topics.PRODUCT_VIEWS)
    serde = support.serde_for(stack_env)
    cases = product_view_cases(
        serde,
        views,
        tombstone_reason="undecodable",
        wrong_contract_reason="wrong_contract",
    )
    produce_cases(kafka.client_config(), views, cases)
    env = {
        **stack_env,
        "LOG_LEVEL": "INFO",
        "ANOMALY_DETECTOR_TOPIC_PREFIX": prefix,
        "ANOMALY_DETECTOR_GROUP_ID": settings.group_id,
        "ANOMALY_DETECTOR_IDLE_FLUSH_S": "2",
    }
    local = {"bootstrap.servers": kafka.bootstrap_servers}

    def drained() -> bool:
        done, total = group_progress(local, settings.repartition_group_id, inputs)
        return done == total

    with service_process(SERVICE, env, tmp_path / "detector.log") as detector:
        wait_for(drained, 240, what="stage 1 committed every input")
        assert detector.alive(), detector.log()
        assert detector.stop() == 0, detector.log()

    forwarded = support.decoded(stack_env, settings.topic(DETECTOR_INPUT), serde)
    landed = Counter(str(record["metadata"]["event_id"]) for record in forwarded)
    result = tally(cases, dead_letter_reasons(kafka, serde, f"{views}.dlq"), landed)
    print(f"\nanomaly detector fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
