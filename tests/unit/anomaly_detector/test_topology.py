"""The repartition step's pure logic: stage 1's keys and records, the event-time order of re-keyed shipments and
the per-partition tasks of stage 2."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from services.anomaly_detector import detectors
from services.anomaly_detector.settings import (
    CLICKSTREAM,
    INVOICES,
    PAYMENTS,
    SHIPMENTS,
    VIEWS,
    DetectorSettings,
)
from services.anomaly_detector.topology import ALL_SERVICES_KEY, Tasks, detector_input
from tests.unit.anomaly_detector.test_detectors import T0, _meta, shipment, view


def click(t: int, level: str, service: str) -> dict[str, Any]:
    return {"metadata": _meta(t), "level": level, "event_type": level, "service": service, "session_id": "s"}


def test_stage_one_keys_each_event_by_its_detectors_entity() -> None:
    assert detector_input(VIEWS, view(T0, "P-1", None), 0, 0) is None
    assert detector_input(CLICKSTREAM, click(T0, "INFO", "search"), 0, 1) is None
    record = detector_input(VIEWS, view(T0, "P-1", "https://promo.example/"), 2, 7)
    assert record is not None
    assert (record["entity_key"], record["product_id"], record["source_partition"], record["source_offset"]) == (
        "https://promo.example/",
        "P-1",
        2,
        7,
    )
    errors = [detector_input(CLICKSTREAM, click(T0, "ERROR", name), 1, 3) for name in ("cart", "auth")]
    assert [r and (r["entity_key"], r["service"]) for r in errors] == [
        (ALL_SERVICES_KEY, "cart"),
        (ALL_SERVICES_KEY, "auth"),
    ]
    late = detector_input(SHIPMENTS, shipment(T0, "DE-HAM>FR-PAR", "X1", "DELIVERED", 5), 0, 0)
    assert late is not None and late["entity_key"] == "DE-HAM>FR-PAR" and late["actual_delivery_date"] == 20_005
    money = {"metadata": _meta(T0), "invoice_id": "INV-1", "amount": Decimal("10.00"), "currency": "EUR"}
    for source in (INVOICES, PAYMENTS):
        found = detector_input(source, money, 0, 0)
        assert found is not None and found["entity_key"] == "INV-1" and found["source_topic"] == source


def test_event_time_order_sorts_interleaved_partitions() -> None:
    order = detectors.EventTimeOrder(lateness_ms=10_000, partitions=2)
    events: list[tuple[int, dict[str, Any]]] = [
        (p, {"metadata": _meta(T0 + t * 1000), "n": (p, t)}) for p in (0, 1) for t in range(0, 60, 3)
    ]
    random.Random(4).shuffle(events)
    events.sort(key=lambda item: item[1]["n"][1] + 8 * item[0])  # partition 1 runs 8 s behind partition 0
    released = [e for p, e in events for e in order.push(e, p)] + order.drain()
    assert [e["n"] for e in released] == sorted((e["n"] for _, e in events), key=lambda n: (n[1], n[0]))


def test_tasks_keep_partitions_apart() -> None:
    tasks = Tasks(DetectorSettings())
    promo = [detector_input(VIEWS, view(T0 + i * 100, "P-9", "https://promo.example/"), 0, i) for i in range(80)]
    for record in promo[:40]:
        assert record is not None
        tasks.observe(0, record)
    for record in promo[40:]:
        assert record is not None
        tasks.observe(1, record)  # half the spike in another partition: neither task sees 60 views
    assert tasks.flush() == []
    for i, record in enumerate(promo):
        assert record is not None
        tasks.observe(2, {**record, "source_offset": 100 + i})
    found = tasks.flush([2], drop=True)
    assert [a["entity_key"] for a in found] == ["P-9"] and sorted(tasks.tasks) == [0, 1]
