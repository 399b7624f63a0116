from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.common.metrics import BatchHistogram

VALUES = [0.0, 0.001, 0.5, 1.0, 1.0000001, 2.5, 10.0, 99.0, 1e9, -3.0]
BUCKETS = (0.001, 0.5, 1, 2.5, 10, 100)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_a_batch_counts_as_one_observe_per_value() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("h", "help", ["k"], buckets=BUCKETS, registry=one)
    bulk = BatchHistogram("h", "help", ["k"], buckets=BUCKETS, registry=many)
    for value in VALUES:
        single.labels("a").observe(value)
    single.labels("b").observe(0.7)
    bulk.labels("a").observe_many(VALUES)
    bulk.labels("a").observe_many([])
    bulk.labels("b").observe(0.7)
    assert _samples(many) == _samples(one)
    assert _samples(one)[("h_count", (("k", "a"),))] == len(VALUES)


def test_exposition_matches_the_client_histogram() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    Histogram("h_seconds", "help", ["k"], buckets=BUCKETS, registry=one).labels("x").observe(0.5)
    BatchHistogram("h_seconds", "help", ["k"], buckets=BUCKETS, registry=many).labels("x").observe(0.5)

    def lines(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert lines(many) == lines(one)
