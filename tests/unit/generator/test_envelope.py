"""The envelope: version 4 event ids unique per run, delays within the lateness model."""

from __future__ import annotations

import random
import uuid

from services.generator.config import GeneratorConfig
from services.generator.envelope import Envelopes, id_prefix

START = 1_767_225_600_000


def test_event_ids_are_version_4_uuids_unique_per_run_and_seed() -> None:
    envelopes = Envelopes(GeneratorConfig(seed=5, start_time_ms=START), random.Random(5).random)
    ids = [envelopes.uuid() for _ in range(1_000)] + [envelopes.metadata(START, START)["event_id"] for _ in range(10)]
    assert len(set(ids)) == len(ids)
    for value in ids[:3] + ids[-3:]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
    assert id_prefix(5, START) == id_prefix(5, START)
    assert len({id_prefix(5, START), id_prefix(6, START), id_prefix(5, START + 1)}) == 3


def test_delays_are_jitter_for_most_events_and_bounded_lateness_for_the_late_share() -> None:
    config = GeneratorConfig(start_time_ms=START, jitter_ms=200, late_fraction=0.1, max_lateness_ms=30_000)
    envelopes = Envelopes(config, random.Random(7).random)
    delays = [envelopes.delay() for _ in range(50_000)]
    assert min(delays) >= 0 and max(delays) <= 30_000
    late = sum(delay > 200 for delay in delays) / len(delays)
    assert 0.09 < late < 0.11
    assert max(delays) > 25_000, "late events spread up to the maximum lateness"


def test_metadata_carries_both_clocks_and_the_producer() -> None:
    envelopes = Envelopes(GeneratorConfig(start_time_ms=START, producer="gen-test"), random.Random(1).random)
    metadata = envelopes.metadata(START, START + 150)
    assert metadata["event_time"] == START and metadata["ingest_time"] == START + 150
    assert (metadata["producer"], metadata["trace_context"]) == ("gen-test", None)
