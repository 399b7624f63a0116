"""The main job's service stages counted exactly, as its e2e test and the secure leg check them: every record the
generator produced this run is mirrored, enriched and landed once, no more, no less (``deploy.pipeline.Figures``)."""

from __future__ import annotations

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
