"""The event engine: reproducible, consistent, late within bounds, with labels that match the injections."""

from __future__ import annotations

import dataclasses
import tracemalloc
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from deploy.chaos_load import SCHEDULED_RECORD_BYTES
from schemas.catalogue import load_catalogue, load_schema
from services.generator.config import GeneratorConfig
from services.generator.engine import Engine
from services.generator.records import (
    ALL_TOPICS,
    ANOMALY_LABELS,
    CLICKSTREAM,
    INVOICES,
    ORDERS,
    PAYMENTS,
    PRODUCT_VIEWS,
    SHIPMENTS,
    Emitted,
)
from services.generator.world import CARRIERS_PER_ROUTE, WorldSizes, route_carriers

SMALL = WorldSizes(products=60, customers=150, suppliers=8, devices=300)


def config(**overrides: Any) -> GeneratorConfig:
    return dataclasses.replace(GeneratorConfig(sizes=SMALL), **overrides)


def run(engine: Engine, count: int) -> list[Emitted]:
    return [engine.next() for _ in range(count)]


def test_same_seed_gives_the_same_events() -> None:
    first, second = Engine(config(seed=7)), Engine(config(seed=7))
    assert [(e.topic, e.key, e.value) for e in first.reference_snapshot()] == [
        (e.topic, e.key, e.value) for e in second.reference_snapshot()
    ]
    a, b = run(first, 5000), run(second, 5000)
    assert [(e.topic, e.key, e.value, e.event_time_ms, e.produce_time_ms) for e in a] == [
        (e.topic, e.key, e.value, e.event_time_ms, e.produce_time_ms) for e in b
    ]


def test_another_seed_gives_other_events() -> None:
    a, b = run(Engine(config(seed=1)), 200), run(Engine(config(seed=2)), 200)
    assert [e.value for e in a] != [e.value for e in b]


def test_every_family_is_generated_and_encodes_with_its_contract() -> None:
    engine = Engine(config(anomalies_per_minute=6.0))
    items = engine.reference_snapshot() + run(engine, 30_000) + engine.finish()
    catalogue = load_catalogue()
    parsed = {topic: fastavro.parse_schema(load_schema(catalogue.topic(topic).value_schema)) for topic in ALL_TOPICS}
    seen = {item.topic for item in items}
    assert seen == set(ALL_TOPICS)
    ids = set()
    for item in items:
        spec = catalogue.topic(item.topic)
        assert item.key == item.value[spec.key_field], (item.topic, item.key)
        assert fastavro.validation.validate(item.value, parsed[item.topic], raise_errors=True)
        ids.add(item.value["metadata"]["event_id"])
    assert len(ids) == len(items), "event ids are unique"


def test_orders_obey_price_quantity_and_date_invariants() -> None:
    orders = [e.value for e in run(Engine(config()), 20_000) if e.topic == ORDERS]
    assert orders
    for order in orders:
        assert order["line_items"]
        for line in order["line_items"]:
            assert line["quantity"] >= 1
            assert line["price"] >= 0
            assert line["sales_amount"] == line["price"] * line["quantity"]
        assert order["order_total"] == sum((line["sales_amount"] for line in order["line_items"]), Decimal(0))
        if order["ship_date"] is not None:
            assert order["order_date"] <= order["ship_date"] <= order["due_date"]
        assert order["status"] in {"PLACED", "SHIPPED", "DELIVERED"}


def test_entities_progress_in_order_per_key() -> None:
    by_key: dict[tuple[str, str], list[Emitted]] = defaultdict(list)
    for item in run(Engine(config(late_fraction=0.2)), 30_000):
        if item.topic in (ORDERS, SHIPMENTS):
            by_key[(item.topic, item.key)].append(item)
    order_rank = {"PLACED": 0, "SHIPPED": 1, "DELIVERED": 2}
    shipments = 0
    for (topic, _), items in by_key.items():
        times = [i.event_time_ms for i in items]
        assert times == sorted(times), "one key's events leave in event-time order"
        if topic == ORDERS:
            ranks = [order_rank[i.value["status"]] for i in items]
            assert ranks == sorted(ranks)
            continue
        sequence = [i.value["sequence_number"] for i in items]
        assert sequence == list(range(1, len(items) + 1))
        assert items[0].value["status"] == "PENDING"
        for event in items:
            assert (event.value["status"] == "DELAYED") == (event.value["delay_reason"] is not None)
        if items[-1].value["status"] == "DELIVERED":
            shipments += 1
            last = items[-1].value
            assert last["actual_delivery_date"] is not None
            late = last["actual_delivery_date"] > last["estimated_delivery_date"]
            assert late == any(i.value["status"] == "DELAYED" for i in items)
            assert (last["delivery_penalty"] > 0) == late
    assert shipments > 10


def test_each_shipment_keeps_one_carrier_of_its_route() -> None:
    seed = 11
    carriers: dict[str, set[str]] = defaultdict(set)
    by_route: dict[str, set[str]] = defaultdict(set)
    for item in run(Engine(config(seed=seed)), 20_000):
        if item.topic == SHIPMENTS:
            carriers[item.key].add(item.value["carrier"])
            by_route[item.value["route_id"]].add(item.value["carrier"])
    assert carriers, "shipments were generated"
    assert all(len(names) == 1 for names in carriers.values()), "every event of a shipment names its one carrier"
    for route, names in by_route.items():
        assert names <= set(route_carriers(seed, route))
    assert any(len(names) == CARRIERS_PER_ROUTE for names in by_route.values()), "routes share their shipments"
    assert route_carriers(seed, "DE-HAM>FR-PAR") == route_carriers(seed, "DE-HAM>FR-PAR")


def test_lateness_is_bounded_and_late_share_follows_the_setting() -> None:
    cfg = config(late_fraction=0.1, jitter_ms=100, max_lateness_ms=20_000, step_ms=25_000)
    items = [i for i in run(Engine(cfg), 40_000) if i.topic != ANOMALY_LABELS]
    produce_times = [i.produce_time_ms for i in items]
    assert produce_times == sorted(produce_times), "emission follows produce time"
    lateness = [i.lateness_ms for i in items]
    assert min(lateness) >= 0
    assert max(lateness) <= cfg.max_lateness_ms
    late_share = sum(1 for value in lateness if value > cfg.jitter_ms) / len(lateness)
    assert 0.07 < late_share < 0.13
    for item in items:
        metadata = item.value["metadata"]
        assert metadata["event_time"] == item.event_time_ms
        assert metadata["ingest_time"] >= metadata["event_time"]
    latest = 0
    out_of_order = 0
    for item in items:
        if item.event_time_ms < latest:
            out_of_order += 1
        latest = max(latest, item.event_time_ms)
    assert out_of_order > 0.05 * len(items)


def test_no_late_events_when_disabled() -> None:
    items = run(Engine(config(late_fraction=0.0, jitter_ms=0)), 5000)
    assert all(i.lateness_ms == 0 for i in items if i.topic != ANOMALY_LABELS)


def test_bursts_raise_the_rate() -> None:
    cfg = config(burst_interval_s=30, burst_duration_s=10, burst_factor=8.0, anomalies_per_minute=0)
    engine = Engine(cfg)
    inside = outside = 0
    items = run(engine, 40_000)
    for item in items:
        if item.topic == PRODUCT_VIEWS:
            if engine.in_burst(item.event_time_ms):
                inside += 1
            else:
                outside += 1
    assert inside > 0 and outside > 0
    # Views per unit of simulated time inside bursts against outside them (factor 8; lateness blurs the edges).
    first, last = cfg.start_time_ms, max(item.event_time_ms for item in items)
    samples = [engine.in_burst(at) for at in range(first, last, 100)]
    share = sum(samples) / len(samples)
    assert 0 < share < 1
    assert (inside / share) > 4 * (outside / (1 - share))


def test_anomaly_labels_match_the_injected_events() -> None:
    engine = Engine(config(anomalies_per_minute=12.0, max_lateness_ms=5_000, step_ms=6_000))
    items = run(engine, 60_000)
    by_id = {i.value["metadata"]["event_id"]: i for i in items if i.topic != ANOMALY_LABELS}
    position = {i.value["metadata"]["event_id"]: n for n, i in enumerate(items)}
    labels = [(n, i.value) for n, i in enumerate(items) if i.topic == ANOMALY_LABELS]
    kinds = {label["anomaly_type"] for _, label in labels}
    assert kinds == {"PRODUCT_VIEW_SPIKE", "SHIPMENT_DELAY_SURGE", "ERROR_RATE_SPIKE", "OTHER"}
    assert sum(engine.anomalies_injected.values()) == len(labels)
    for index, label in labels:
        events = [by_id[event_id] for event_id in label["event_ids"]]
        assert all(position[event_id] < index for event_id in label["event_ids"]), "label after its events"
        times = [e.event_time_ms for e in events]
        assert label["start_time"] == min(times) and label["end_time"] == max(times) + 1
        kind = label["anomaly_type"]
        if kind == "PRODUCT_VIEW_SPIKE":
            assert {e.topic for e in events} == {PRODUCT_VIEWS}
            assert {e.value["product_id"] for e in events} == {label["entity_key"]}
            assert len({e.value["referrer_url"] for e in events}) == 1
            assert len(events) >= 150
        elif kind == "ERROR_RATE_SPIKE":
            assert {e.topic for e in events} == {CLICKSTREAM}
            assert {(e.value["event_type"], e.value["service"]) for e in events} == {("ERROR", label["entity_key"])}
        elif kind == "SHIPMENT_DELAY_SURGE":
            assert {e.topic for e in events} == {SHIPMENTS}
            assert {e.value["route_id"] for e in events} == {label["entity_key"]}
            delivered = [e.value for e in events if e.value["status"] == "DELIVERED"]
            assert len(delivered) >= 6
            assert all(v["actual_delivery_date"] > v["estimated_delivery_date"] for v in delivered)
        else:
            invoice, payment = events
            assert invoice.topic == INVOICES and payment.topic == PAYMENTS
            assert invoice.key == payment.key == label["entity_key"]
            assert payment.value["amount"] >= 4 * invoice.value["amount"]


def test_finish_completes_the_anomalies_in_progress() -> None:
    engine = Engine(config(anomalies_per_minute=60.0))
    items = run(engine, 3_000)
    emitted = {i.value["metadata"]["event_id"] for i in items}
    rest = engine.finish()
    labels = [i.value for i in rest if i.topic == ANOMALY_LABELS]
    assert labels, "anomalies in progress are completed and labelled at the end"
    tail = [i for i in rest if i.topic != ANOMALY_LABELS]
    assert tail and all(i.injection is not None for i in tail), "only the anomalies' own events"
    assert not {i.value["metadata"]["event_id"] for i in tail} & emitted
    for label in labels:
        assert set(label["event_ids"]) <= emitted | {i.value["metadata"]["event_id"] for i in tail}
    assert engine.finish() == []


def test_invalid_configurations_are_rejected() -> None:
    with pytest.raises(ValueError, match="step_ms"):
        GeneratorConfig(max_lateness_ms=60_000, step_ms=30_000)
    with pytest.raises(ValueError, match="unknown rate"):
        GeneratorConfig(rates={"nope": 1.0})
    with pytest.raises(ValueError, match="late_fraction"):
        GeneratorConfig(late_fraction=2.0)


def test_take_returns_what_next_returns() -> None:
    one_by_one, batched = Engine(config(anomalies_per_minute=12.0)), Engine(config(anomalies_per_minute=12.0))
    a = run(one_by_one, 6_000)
    b = batched.take(2_500) + batched.take(1) + batched.take(3_499)
    assert [(e.topic, e.key, e.value, e.event_time_ms, e.produce_time_ms) for e in a] == [
        (e.topic, e.key, e.value, e.event_time_ms, e.produce_time_ms) for e in b
    ]
    assert one_by_one.now_ms == batched.now_ms
    assert [(e.key, e.value) for e in one_by_one.finish()] == [(e.key, e.value) for e in batched.finish()]


def test_event_ids_are_version_4_uuids_of_the_run() -> None:
    first = run(Engine(config(seed=3)), 2_000)
    ids = [uuid.UUID(e.value["metadata"]["event_id"]) for e in first]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    later = run(Engine(config(seed=3, start_time_ms=GeneratorConfig().start_time_ms + 60_000)), 2_000)
    assert not {e.value["metadata"]["event_id"] for e in later} & {str(i) for i in ids}, "runs differ in ids"


def test_the_schedule_stops_growing_and_each_scheduled_record_stays_small() -> None:
    """What the engine holds is the open orders' and shipments' future records: once an order's whole life has
    passed in simulated time their number stops growing with the run, and each costs no more than the chaos
    harness allows a generator per scheduled record (a built record, not yet due, costs 1.9 KiB)."""
    engine = Engine(config(seed=3))
    start = engine.config.start_time_ms
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        while engine.now_ms < start + 300_000:
            engine.take(256)
        held, scheduled = tracemalloc.get_traced_memory()[0] - before, engine.scheduled
    finally:
        tracemalloc.stop()
    assert held / scheduled <= SCHEDULED_RECORD_BYTES
    peak = scheduled
    while engine.now_ms < start + 900_000:
        engine.take(256)
        peak = max(peak, engine.scheduled)
    assert peak < 2 * scheduled
