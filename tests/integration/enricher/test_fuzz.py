"""Bad input to the enricher's product-view input: every bad record is dead-lettered with its reason, every valid
view is enriched once, the enricher keeps running (one process, after a small generated world)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas import topics
from services.common.settings import KafkaSettings
from tests.integration.enricher import support
from tests.integration.fuzz import dead_letter_reasons, produce_cases, product_view_cases, tally

pytestmark = pytest.mark.integration


def test_bad_views_are_dead_lettered_with_their_reason_and_every_valid_view_is_enriched_once(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr-fuzz") + "-"
    support.run_generator(stack_env, prefix, 200, 31, GENERATOR_ANOMALIES_PER_MINUTE="0")  # topics and references
    kafka = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    serde = support.serde_for(stack_env)
    views = prefix + topics.PRODUCT_VIEWS
    cases = product_view_cases(serde, views, tombstone_reason="undecodable")
    produce_cases(kafka.client_config(), views, cases)

    process = support.start_enricher(stack_env, prefix, tmp_path / "data", tmp_path / "enricher.log")
    try:
        assert support.wait_caught_up(stack_env, f"{prefix}enricher", [views], 240, process)
        assert process.poll() is None
    finally:
        assert support.stop(process) == 0

    enriched = support.decoded(stack_env, prefix + topics.ENRICHED_PRODUCT_VIEWS, serde)
    landed = Counter(str(record["event"]["metadata"]["event_id"]) for record in enriched)
    result = tally(cases, dead_letter_reasons(kafka, serde, f"{views}.dlq"), landed)
    print(f"\nenricher fuzz: {len(cases)} records ({result.summary(cases)})\n{result.table()}")
    assert result.problems == []
