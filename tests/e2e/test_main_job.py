"""The main job's stages end to end on the session's local stack, at 100,000 events of a fixed seed.

Every stage's figures are checked exactly against the generator's per-topic counts (records and distinct event ids,
not differences of lag, which can cancel out), the detector must find each injected anomaly type with precision
and recall of at least 0.9, and each Flink window job's output must equal its oracle over this run's events.
"""

from __future__ import annotations

import pytest

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.pipeline import LABELS, execute
from schemas.catalogue import load_catalogue
from tests.pipeline_counts import check_dbt_stage, check_service_stages, check_stream_stage

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

EVENTS = 100_000
SEED = 20261102  # the world is the seed's; the run's start time only renews the event ids
MIN_PRECISION = MIN_RECALL = 0.9


def test_main_job_counts_every_stage_exactly_and_detects(stack_env: dict[str, str]) -> None:
    stack = Stack(StackContext.create(StackSettings()))
    report = execute(stack, stack_env, events=EVENTS, seed=SEED)
    figures = report.figures
    assert dict(report.sections["Contracts"])["subjects registered"] == str(len(load_catalogue().topics))
    assert figures.smoke_consumed == EVENTS

    # Nothing left behind by an earlier run: every stage's figures are this run's events and nothing else.
    assert figures.leftover and set(figures.leftover.values()) == {0}, figures.leftover
    assert sum(figures.generated.values()) >= EVENTS
    assert all(count > 0 for count in figures.generated.values()), figures.generated

    check_service_stages(figures)

    # Every injected incident is labelled; the scorer names types by the detector's kinds, one per injected kind.
    assert figures.injected and sum(figures.injected.values()) == figures.generated[LABELS]
    assert len(figures.detection) == len(figures.injected), (figures.injected, figures.detection)
    assert sum(item["labels"] for item in figures.detection.values()) == figures.generated[LABELS]
    for kind, item in figures.detection.items():
        assert item["precision"] is not None and item["precision"] >= MIN_PRECISION, (kind, item)
        assert item["recall"] is not None and item["recall"] >= MIN_RECALL, (kind, item)
    # The Flink window jobs read exactly this run's source events and agree with the oracle of them.
    check_stream_stage(figures, stack_env)

    # The batch stages through Airflow, their figures read back from the warehouse: one daily_analytics run per day,
    # every raw row read from the lake accounted for (loaded, rejected or a duplicate), at least this run's landed
    # rows read; one dbt_build run per published day, every model built and every test passed, no source stale.
    batch, dbt = figures.batch, figures.dbt
    assert batch is not None and dbt is not None
    assert set(batch.runs) == set(batch.days) and batch.accounted, batch
    assert sum(batch.read.values()) >= figures.landed["hdfs"] + figures.landed["gcs"]
    assert all(batch.loaded[family] > 0 for family in ("orders", "product_views", "clickstream")), batch.loaded
    check_dbt_stage(dbt)

    # Last, the report's own verdict (its figures checked independently above).
    assert report.problems == []
