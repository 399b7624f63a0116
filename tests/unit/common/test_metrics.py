from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from services.common.metrics import observe_many

VALUES = [0.0, 0.001, 0.5, 1.0, 1.0000001, 2.5, 10.0, 99.0, 1e9, -3.0]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_observe_many_counts_as_observe_per_value() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    buckets = (0.001, 0.5, 1, 2.5, 10, 100)
    single = Histogram("h", "h", ["k"], buckets=buckets, registry=one).labels("a")
    bulk = Histogram("h", "h", ["k"], buckets=buckets, registry=many).labels("a")
    for value in VALUES:
        single.observe(value)
    observe_many(bulk, VALUES)
    observe_many(bulk, [])
    assert _samples(many) == _samples(one)
    assert _samples(one)[("h_count", (("k", "a"),))] == len(VALUES)
