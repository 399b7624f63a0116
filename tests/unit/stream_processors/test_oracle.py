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


def enriched_view(minute: float, product: str, category: str | None, device: str = "D-1") -> dict[str, object]:
    time = T0 + dt.timedelta(minutes=minute)
    return {
        "metadata": {"event_id": f"e-{minute}-{product}", "event_time": time},
        "event": {"product_id": product, "device_id": device},
        "product": {"category": category},
    }


def test_top_products_rank_per_category_in_every_hopping_window_with_ties_by_product() -> None:
    from stream_processors.oracle import category_top_products_windows

    events = [
        enriched_view(1, "P-2", "Sports"),
        enriched_view(2, "P-1", "Sports", device="D-2"),
        enriched_view(6, "P-3", "Sports"),
        enriched_view(7, "P-3", "Sports", device="D-3"),
        enriched_view(7, "P-9", None),  # no known category: ranked nowhere
        *(enriched_view(8, f"P-{n:02d}", "Books") for n in range(12)),
    ]
    top = category_top_products_windows(events, None)
    # 10-minute windows every 5 minutes: [-5, 5), [0, 10), [5, 15)
    first, second, third = (T0 + dt.timedelta(minutes=m) for m in (-5, 0, 5))
    assert {(k[0], k[1]): v["rank"] for k, v in top.items() if k[2] == first} == {
        ("Sports", "P-1"): 1,
        ("Sports", "P-2"): 2,
    }
    assert sorted(
        (v["rank"], k[1], v["view_count"]) for k, v in top.items() if k[2] == second and k[0] == "Sports"
    ) == [
        (1, "P-3", 2),
        (2, "P-1", 1),
        (3, "P-2", 1),
    ]
    books = sorted((v["rank"], k[1]) for k, v in top.items() if k[2] == third and k[0] == "Books")
    assert books == [(rank, f"P-{rank - 1:02d}") for rank in range(1, 11)]  # 12 tied: the first 10 by id
    assert top[("Sports", "P-3", third)]["unique_visitors"] == 2
    assert not any(k[1] == "P-9" for k in top)
    assert top[("Sports", "P-3", third)]["window_end"] == third + dt.timedelta(minutes=10)


def test_error_rate_counts_error_and_critical_levels() -> None:
    from stream_processors.oracle import service_error_rate_windows

    levels = ["INFO", "ERROR", "WARNING", "CRITICAL"]
    events = [
        {
            "metadata": {"event_id": f"e-{i}", "event_time": T0 + dt.timedelta(seconds=i)},
            "service": "checkout",
            "level": level,
        }
        for i, level in enumerate(levels)
    ]
    window = service_error_rate_windows(events, None)[("checkout", T0)]
    assert (window["event_count"], window["error_count"], window["error_rate"]) == (4, 2, 0.5)
