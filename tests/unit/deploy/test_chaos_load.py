"""The chaos harness's load side (memory rows and their bound, a stage's rate while behind, the paced rates) and
its count of the Flink windows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deploy.chaos_flink import window_counts
from deploy.chaos_load import (
    MEMORY_ALLOWANCE,
    MIB,
    SCHEDULED_RECORD_BYTES,
    GroupSample,
    RssSample,
    busy_rate,
    memory_rows,
    paced_rates,
    scheduled_peak,
)
from deploy.stream_stage import WindowJobFigures
from services.generator.settings import GeneratorSettings
from stream_processors.product_views import ProductViewsJobSettings


def test_memory_row_start_peak_end_across_restarts() -> None:
    samples = [
        RssSample(0.0, 10, 30 * MIB, 1.0),  # still starting: not its RSS after start-up
        RssSample(12.0, 10, 80 * MIB, 12.0),
        RssSample(15.0, 10, 150 * MIB, 15.0),
        RssSample(18.0, 11, 40 * MIB, 1.0),  # killed and restarted
        RssSample(30.0, 11, 90 * MIB, 13.0),
    ]
    (row,) = memory_rows({"enricher": samples})
    assert (row.start, row.peak, row.end, row.processes, row.samples) == (80 * MIB, 150 * MIB, 90 * MIB, 2, 5)
    assert row.bound == 160 * MIB + MEMORY_ALLOWANCE
    assert row.within is True


def test_memory_growing_with_the_backlog_crosses_the_bound() -> None:
    samples = [RssSample(float(t), 7, (60 + 40 * t) * MIB, float(t) + 10) for t in range(10)]
    (row,) = memory_rows({"sink": samples})
    assert row.start == 60 * MIB and row.peak == 420 * MIB
    assert row.within is False


def test_a_generator_is_allowed_its_scheduled_records_read_from_its_summary(tmp_path: Path) -> None:
    log = tmp_path / "generator-stream.log"
    summary = {"events": 9, "stopped_by": "duration", "scheduled_peak": 200_000}
    log.write_text(
        json.dumps({"level": "INFO", "message": "generator topics"})
        + "\n"
        + json.dumps(summary)
        + "\n"
        + json.dumps({"level": "INFO", "message": "closed"})
        + "\n"
    )
    assert scheduled_peak(log) == 200_000
    assert scheduled_peak(tmp_path / "missing.log") == 0
    samples = [RssSample(float(t), 7, (100 + 40 * t) * MIB, float(t) + 10) for t in range(10)]
    (row,) = memory_rows({"generator (stream)": samples})
    assert row.within is False  # 460 MiB against 2 x 100 MiB + the allowance
    row = dataclasses.replace(row, scheduled=scheduled_peak(log))
    assert row.bound == 200 * MIB + MEMORY_ALLOWANCE + 200_000 * SCHEDULED_RECORD_BYTES
    assert row.within is True


def test_no_start_up_figure_for_a_service_that_never_settled() -> None:
    (row,) = memory_rows({"mirror": [RssSample(0.0, 3, 20 * MIB, 2.0)]})
    assert row.start is None and row.bound is None and row.within is None


def test_busy_rate_leaves_out_start_up_and_catching_up() -> None:
    samples = [
        GroupSample(0.0, 0, 1000),  # starting: nothing committed yet
        GroupSample(1.0, 0, 1000),
        GroupSample(2.0, 200, 800),  # first commit: busy from here
        GroupSample(3.0, 500, 500),
        GroupSample(5.0, 900, 100),
        GroupSample(6.0, 1000, 0),  # caught up within this interval: not a full busy interval
        GroupSample(7.0, 1000, 0),
    ]
    rate, busy = busy_rate(samples, min_lag=1)
    assert (rate, busy) == (700 / 3.0, 3.0)
    assert busy_rate([GroupSample(0.0, 0, 10), GroupSample(1.0, 10, 0)], min_lag=1) == (None, 0.0)


def test_a_batch_waiting_for_its_timeout_is_not_busy() -> None:
    # a sink with 400 records pending commits them when its batch timeout expires: behind, but not slow
    samples = [GroupSample(0.0, 100, 400), GroupSample(1.0, 100, 400), GroupSample(2.0, 500, 0)]
    assert busy_rate(samples) == (None, 0.0)
    busy = [GroupSample(0.0, 100, 20_000), GroupSample(2.0, 4_100, 16_000), GroupSample(3.0, 4_100, 0)]
    assert busy_rate(busy) == (2_000.0, 2.0)


def test_paced_rates_keep_the_mix_at_the_total_asked() -> None:
    settings = GeneratorSettings()
    rates = paced_rates(2 * settings.events_per_second(), settings)
    fields = {key.removeprefix("GENERATOR_").lower(): float(value) for key, value in rates.items()}
    doubled = GeneratorSettings.model_validate(fields)
    assert doubled.events_per_second() == pytest.approx(2 * settings.events_per_second(), rel=1e-4)
    assert doubled.rate_product_views == pytest.approx(2 * settings.rate_product_views, rel=1e-4)


def test_window_counts_charge_missing_doubled_and_wrong_windows() -> None:
    settings = ProductViewsJobSettings(sink_topic="run.aggregates", postgres_table="chaos_run.product_views_1m")
    figures = WindowJobFigures(
        windows_expected=10,
        late_events=2,
        kafka_missing=1,
        kafka_duplicates=3,
        kafka_differing=1,
        kafka_unexpected=1,
        postgres_rows=9,
        postgres_missing=1,
        postgres_differing=2,
    )
    kafka, postgres = window_counts("product_views", settings, figures)
    assert kafka.destination == "run.aggregates"
    assert (kafka.expected, kafka.delivered, kafka.lost, kafka.duplicated, kafka.differing) == (10, 9, 1, 3, 2)
    assert postgres.destination == "chaos_run.product_views_1m"
    pg = postgres
    assert (pg.delivered, pg.lost, pg.duplicated, pg.differing, pg.late) == (9, 1, 0, 2, 2)
