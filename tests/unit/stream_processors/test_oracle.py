"""The window oracle's pure parts: windows closed by a watermark or by a drain, the differences it reports, and the
job's name on the cluster (no Flink, no Kafka)."""

from __future__ import annotations

import datetime as dt

from stream_processors.oracle import differences, product_views_windows
from stream_processors.product_views import JOB, ProductViewsJobSettings

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def view(second: int, product: str = "P-1", device: str = "D-1") -> dict[str, object]:
    time = T0 + dt.timedelta(seconds=second)
    return {"metadata": {"event_id": f"e-{second}", "event_time": time}, "product_id": product, "device_id": device}


def test_a_drain_closes_every_window_and_a_watermark_only_those_it_passed() -> None:
    events = [view(1), view(30, device="D-2"), view(61), view(125)]
    drained = product_views_windows(events, None)
    assert sorted(start.minute for _, start in drained) == [0, 1, 2]
    assert drained[("P-1", T0)]["view_count"] == 2 and drained[("P-1", T0)]["unique_visitors"] == 2
    # the watermark ends at 125 s - 5 s: the window [2 min, 3 min) is still open
    assert sorted(start.minute for _, start in product_views_windows(events, dt.timedelta(seconds=5))) == [0, 1]


def test_differences_name_missing_unexpected_and_differing_fields() -> None:
    expected = {("a",): {"n": 1, "m": 2}, ("b",): {"n": 1}}
    actual = {("a",): {"n": 1, "m": 3}, ("c",): {"n": 1}}
    assert differences(expected, actual) == [
        "differs ('a',): {'m': (3, 2)}",
        "missing ('b',)",
        "unexpected ('c',)",
    ]
    assert differences(expected, expected) == []
    assert differences(expected, {}, limit=1) == ["missing ('a',)", "... 2 in all"]


def test_the_job_name_on_the_cluster_carries_its_consumer_group() -> None:
    assert JOB.pipeline_name(ProductViewsJobSettings(group_id="g-1")) == "product_views_1m [g-1]"
