"""The main job's stages counted exactly, as its e2e test and the secure legs check them: every record the
generator produced this run is mirrored, enriched and landed once, no more, no less; every window job's windows are
its oracle's; dbt builds every model and passes every test (``deploy.pipeline.Figures``)."""

from __future__ import annotations

from collections.abc import Mapping

from deploy import flink_jobs
from deploy.dbt import DBT_PROJECT
from deploy.dbt_stage import DbtFigures
from deploy.pipeline import PRODUCT_VIEWS_LOCAL, PRODUCT_VIEWS_REMOTE, Figures
from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS


def generated(figures: Figures, topic: str) -> int:
    """The generator's count for a local topic (the local product views are the mirrored remote ones)."""
    return figures.generated.get(PRODUCT_VIEWS_REMOTE if topic == PRODUCT_VIEWS_LOCAL else topic, 0)


def check_service_stages(figures: Figures) -> None:
    """Mirror, enricher and sinks: each stage's delivered records (and distinct event ids) equal what it was due."""
    views = figures.generated[PRODUCT_VIEWS_REMOTE]
    assert (figures.mirrored, figures.mirrored_distinct) == (views, views)

    for kind, source in SOURCE_TOPICS.items():
        output = OUTPUT_TOPICS[kind]
        expected = generated(figures, source)
        assert (source, expected > 0) == (source, True)  # every join of the enricher had events to enrich
        assert (output, figures.enriched[output], figures.enriched_distinct[output]) == (output, expected, expected)
        assert figures.enriched_duplicates[output] == 0, output

    assert set(figures.landed) == {"mongodb", "hdfs", "gcs"}
    for sink, topics in figures.sink_topics.items():
        assert (sink, figures.landed[sink]) == (sink, sum(generated(figures, topic) for topic in topics))


def check_stream_stage(figures: Figures, env: Mapping[str, str]) -> None:
    """The Flink window jobs read exactly this run's source events (``env``: the run's settings) and agree with the
    oracle of them, window by window, in the committed Kafka output and in PostgreSQL, every window closed and none
    emitted twice; the late events on the topic are the ones Flink's late-event counter showed Prometheus."""
    assert set(figures.stream) == set(flink_jobs.JOBS)
    for name, job in figures.stream.items():
        source = flink_jobs.job_settings(flink_jobs.job(name), env).source_topic
        # a job over an enriched topic (category_top_products) reads what the enricher wrote this run
        expected_source = figures.enriched[source] if source in figures.enriched else generated(figures, source)
        assert (name, job.source_events) == (name, expected_source)
        assert (name, job.counted_events + job.late_events) == (name, job.source_events)
        assert (name, job.late_seen) == (name, job.late_events)
        assert job.windows_expected > 0, name
        assert (name, job.kafka_rows, job.postgres_rows) == (name, job.windows_expected, job.windows_expected)
        assert (name, job.kafka_duplicates, job.differences) == (name, 0, [])
        assert job.kafka_agrees and job.postgres_agrees, name


def check_dbt_stage(dbt: DbtFigures | None) -> None:
    """One ``dbt build``: every model built and every test passed (more than 100), no source stale."""
    assert dbt is not None
    assert (dbt.models_built, dbt.failures) == (len(list((DBT_PROJECT / "models").rglob("*.sql"))), {})
    assert dbt.tests_passed > 100 and set(dbt.freshness.values()) <= {"pass", "warn"}, dbt.freshness
