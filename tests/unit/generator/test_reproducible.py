"""The same seed gives the same world on every run: keys, encoded values, record timestamps and labels."""

from __future__ import annotations

import datetime as dt
import io

import fastavro
import pytest

from schemas.catalogue import load_catalogue, load_schema
from services.generator.config import seed_origin_ms
from services.generator.engine import Engine
from services.generator.records import ALL_TOPICS, ANOMALY_LABELS
from services.generator.settings import GeneratorSettings

EVENTS = 20_000


def records(seed: int, start_time: dt.datetime | None = None) -> list[tuple[str, str, bytes, int, bool]]:
    """(topic, key, Avro value bytes, record timestamp, is a label) of a bounded run, as the runner sends them."""
    catalogue = load_catalogue()
    schemas = {t: fastavro.parse_schema(load_schema(catalogue.topic(t).value_schema)) for t in ALL_TOPICS}
    settings = GeneratorSettings(seed=seed, start_time=start_time, products=80, customers=300, devices=400)
    engine = Engine(settings.engine_config())
    out = []
    for item in engine.reference_snapshot() + engine.take(EVENTS) + engine.finish():
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schemas[item.topic], item.value)
        out.append((item.topic, item.key, buffer.getvalue(), item.event_time_ms, item.topic == ANOMALY_LABELS))
    return out


def test_the_same_seed_gives_identical_records_and_labels() -> None:
    first, second = records(11), records(11)
    assert first == second
    assert any(label for *_, label in first), "the run holds labels"


def test_other_seeds_give_other_records_and_origins() -> None:
    assert records(11)[:2_000] != records(12)[:2_000]
    assert seed_origin_ms(11) != seed_origin_ms(12)


def test_the_origin_comes_from_the_seed_or_the_start_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENERATOR_START_TIME", raising=False)
    settings = GeneratorSettings(seed=11)
    assert settings.start_ms() == seed_origin_ms(11) == GeneratorSettings(seed=11).engine_config().start_time_ms
    assert seed_origin_ms(11) % 3_600_000 == 0
    start = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    assert GeneratorSettings(seed=11, start_time=start).start_ms() == int(start.timestamp() * 1000)
    naive = GeneratorSettings(seed=11, start_time=dt.datetime(2026, 5, 1, 12, 30)).start_ms()
    assert naive == int(start.timestamp() * 1000), "a start without offset is UTC"
    first = [r[3] for r in records(11, start_time=start)[:500]]
    assert min(first) >= int(start.timestamp() * 1000)
