"""Detectors on hand-made streams: each injected pattern is found, organic traffic is not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.anomaly_detector import detectors
from services.anomaly_detector.score import match

T0 = 1_800_000_000_000


def _meta(t: int) -> dict[str, Any]:
    return {"event_id": "x", "event_time": t, "ingest_time": t, "producer": "test", "trace_context": None}


def view(t: int, product: str, referrer: str | None) -> dict[str, Any]:
    return {"metadata": _meta(t), "product_id": product, "referrer_url": referrer}


def test_referrer_spike_found_and_organic_ignored() -> None:
    detector = detectors.ReferrerSpikeDetector()
    found = []
    organic = [f"https://r{i}.example/" for i in range(5)]
    for second in range(600):
        t = T0 + second * 1000
        for i in range(20):
            found += detector.observe(view(t + i, f"P-{i % 50}", organic[i % 5]))
        if 200 <= second < 240:
            for _ in range(5):
                found += detector.observe(view(t, "P-999", "https://promo.example/deal"))
    found += detector.flush()
    assert found and {f["entity_key"] for f in found} == {"P-999"}
    assert all(f["anomaly_type"] == "PRODUCT_VIEW_SPIKE" for f in found)
    assert any(f["window_start"] <= T0 + 200_000 and f["window_end"] >= T0 + 240_000 for f in found)


def test_lagging_partition_does_not_drop_events() -> None:
    detector = detectors.ReferrerSpikeDetector(min_views=5)
    found = []
    for second in range(300):  # partition 0 runs far ahead
        found += detector.observe(view(T0 + second * 1000, "P-1", "https://r.example/"), partition=0)
    for _ in range(10):
        found += detector.observe(view(T0 + 10_000, "P-2", "https://promo.example/"), partition=1)
    found += detector.flush()
    assert any(f["entity_key"] == "P-2" for f in found)


def click(t: int, service: str, level: str = "ERROR") -> dict[str, Any]:
    return {
        "metadata": _meta(t),
        "service": service,
        "level": level,
        "event_type": "ERROR" if level == "ERROR" else "SEARCH",
    }


def test_error_burst_on_one_service_not_on_shop_wide_bursts() -> None:
    detector = detectors.ErrorBurstDetector()
    services = ["checkout", "search", "catalog", "payments", "auth", "cart"]
    found = []
    for second in range(900):
        t = T0 + second * 1000
        per_service = 4 if 300 <= second < 320 else 1  # shop-wide burst: every service alike
        for service in services:
            for k in range(per_service):
                found += detector.observe(click(t + k, service))
        if 600 <= second < 640:
            for k in range(3):
                found += detector.observe(click(t + 10 + k, "payments"))
    found += detector.flush()
    assert {f["entity_key"] for f in found} == {"payments"}
    assert all(T0 + 480_000 <= f["window_start"] <= T0 + 640_000 for f in found)


def shipment(t: int, route: str, shipment_id: str, status: str, delay: int) -> dict[str, Any]:
    event = {
        "metadata": _meta(t),
        "route_id": route,
        "shipment_id": shipment_id,
        "status": status,
        "estimated_delivery_date": 20_000,
        "actual_delivery_date": None,
        "revenue_generated": Decimal("40.00"),
        "delivery_penalty": Decimal("0.00"),
    }
    if status == "DELIVERED":
        event["actual_delivery_date"] = 20_000 + delay
    elif status == "DELAYED":
        event["delivery_penalty"] = (Decimal("40.00") * Decimal("0.05") * delay).quantize(Decimal("0.01"))
    return event


def test_shipment_delay_surge_from_delayed_and_delivered_events() -> None:
    detector = detectors.ShipmentDelayDetector()
    found = []
    for i in range(20):  # ordinary delays of 1-3 days on a busy route
        found += detector.observe(shipment(T0 + i * 10_000, "DE-HAM>DE-BER", f"S{i}", "DELAYED", 1 + i % 3))
    found += detector.observe(shipment(T0, "DE-HAM>FR-PAR", "X1", "DELAYED", 5))
    found += detector.observe(shipment(T0 + 60_000, "DE-HAM>FR-PAR", "X2", "DELIVERED", 4))
    found += detector.observe(shipment(T0 + 70_000, "DE-HAM>FR-PAR", "X3", "DELIVERED", 6))
    assert {f["entity_key"] for f in found} == {"DE-HAM>FR-PAR"}
    assert {f["anomaly_id"] for f in found} == {found[0]["anomaly_id"]}, "one incident, opened then updated"
    assert found[0]["anomaly_type"] == "SHIPMENT_DELAY_SURGE"
    assert found[-1]["score"] == 3.0 and found[-1]["window_end"] == T0 + 70_001


def test_late_shipments_keep_extending_the_routes_incident() -> None:
    detector = detectors.ShipmentDelayDetector()
    found = []
    for i in range(12):  # one late shipment every 10 minutes: each within the window of the last
        found += detector.observe(shipment(T0 + i * 600_000, "DE-HAM>FR-PAR", f"X{i}", "DELIVERED", 5))
    found += detector.observe(shipment(T0 + 11 * 600_000 + 16 * 60_000, "DE-HAM>FR-PAR", "Y0", "DELIVERED", 5))
    found += detector.observe(shipment(T0 + 11 * 600_000 + 17 * 60_000, "DE-HAM>FR-PAR", "Y1", "DELIVERED", 5))
    ids = list(dict.fromkeys(f["anomaly_id"] for f in found))
    assert len(ids) == 2, "a gap longer than the window closes the incident"
    first = [f for f in found if f["anomaly_id"] == ids[0]][-1]
    assert first["window_start"] == T0 and first["window_end"] == T0 + 11 * 600_000 + 1


def test_payment_far_above_invoice_in_either_arrival_order() -> None:
    detector = detectors.PaymentAmountDetector()

    def invoice(key: str, amount: str) -> dict[str, Any]:
        return {"metadata": _meta(T0), "invoice_id": key, "amount": Decimal(amount)}

    def payment(key: str, amount: str) -> dict[str, Any]:
        return {"metadata": _meta(T0 + 45_000), "invoice_id": key, "amount": Decimal(amount)}

    assert detector.observe_invoice(invoice("INV-1", "100.00")) == []
    assert detector.observe_payment(payment("INV-1", "100.00")) == []
    assert detector.observe_payment(payment("INV-2", "1500.00")) == []  # invoice not seen yet
    found = detector.observe_invoice(invoice("INV-2", "100.00"))
    assert [f["entity_key"] for f in found] == ["INV-2"] and found[0]["score"] == 15.0


def test_anomaly_ids_are_stable() -> None:
    assert detectors.anomaly_id("OTHER", "INV-1", T0) == detectors.anomaly_id("OTHER", "INV-1", T0)
    assert detectors.anomaly_id("OTHER", "INV-1", T0) != detectors.anomaly_id("OTHER", "INV-2", T0)


def test_score_matches_type_entity_and_overlapping_window() -> None:
    labels = [
        {"anomaly_type": "OTHER", "entity_key": "INV-1", "start_time": T0, "end_time": T0 + 1},
        {"anomaly_type": "OTHER", "entity_key": "INV-2", "start_time": T0, "end_time": T0 + 1},
    ]
    detections = [
        {"anomaly_id": "a", "anomaly_type": "OTHER", "entity_key": "INV-1", "window_start": T0, "window_end": T0 + 1},
        {"anomaly_id": "a", "anomaly_type": "OTHER", "entity_key": "INV-1", "window_start": T0, "window_end": T0 + 1},
        {"anomaly_id": "b", "anomaly_type": "OTHER", "entity_key": "INV-9", "window_start": T0, "window_end": T0 + 1},
        {
            "anomaly_id": "c",
            "anomaly_type": "OTHER",
            "entity_key": "INV-2",
            "window_start": T0 + 600_000,
            "window_end": T0 + 600_001,
        },
    ]
    result = match(labels, detections, tolerance_ms=60_000)["OTHER"]
    assert result["detections"] == 3 and result["true_detections"] == 1
    assert result["precision"] == 1 / 3 and result["recall"] == 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_idle_partition_is_left_out_of_the_watermark_after_the_timeout() -> None:
    clock = FakeClock()
    mark = detectors.Watermark(lateness_ms=0, partitions=2, idle_timeout_s=30.0, clock=clock)
    assert mark.advance(T0, partition=0) < T0 - 10**12, "waits for every partition"
    mark.advance(T0, partition=1)  # partition 1 then goes quiet
    for second in range(1, 20):
        clock.now = float(second)
        assert mark.advance(T0 + second * 60_000, partition=0) == T0, "held back by partition 1 within the timeout"
    clock.now = 31.0
    assert mark.advance(T0 + 20 * 60_000, partition=0) == T0 + 20 * 60_000, "idle partition left out"
    assert mark.advance(T0 + 60_000, partition=1) == T0 + 60_000, "back in once it delivers again"


def test_a_partition_never_heard_from_stops_holding_windows_after_the_timeout() -> None:
    clock = FakeClock()
    detector = detectors.ReferrerSpikeDetector(min_views=5, partitions=3, idle_timeout_s=30.0, clock=clock)
    found = []
    for second in range(400):
        clock.now = float(second)
        found += detector.observe(view(T0 + second * 1000, "P-1", f"https://r{second % 7}.example/"), partition=0)
        if 100 <= second < 110:
            found += detector.observe(view(T0 + second * 1000, "P-2", "https://promo.example/"), partition=0)
    assert any(f["entity_key"] == "P-2" for f in found), "windows closed although partitions 1 and 2 stayed empty"


def test_repeated_window_detections_fold_into_one_incident() -> None:
    detector = detectors.ReferrerSpikeDetector(min_views=5)
    found = []
    for second in range(900):
        t = T0 + second * 1000
        for i in range(10):
            found += detector.observe(view(t + i, f"P-{i}", f"https://r{i % 5}.example/"))
        if 200 <= second < 400:  # a spike over several windows
            found += detector.observe(view(t, "P-999", "https://promo.example/deal"))
    found += detector.flush()
    (incident,) = [f for f in found if f["entity_key"] == "P-999"]
    assert incident["window_start"] <= T0 + 200_000 and incident["window_end"] >= T0 + 400_000
    windows = [e for e in incident["evidence"] if e["metric"] == "windows"]
    assert windows and windows[0]["observed"] >= 3


def test_score_reports_detections_per_matched_incident() -> None:
    labels = [{"anomaly_type": "OTHER", "entity_key": "INV-1", "start_time": T0, "end_time": T0 + 1}]
    detections = [
        {"anomaly_id": n, "anomaly_type": "OTHER", "entity_key": "INV-1", "window_start": T0, "window_end": T0 + 1}
        for n in ("a", "b", "c")
    ]
    item = match(labels, detections)["OTHER"]
    assert item["precision"] == 1.0 and item["recall"] == 1.0 and item["detections_per_incident"] == 3.0
