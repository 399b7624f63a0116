"""Plain-Python oracles of the windowed jobs and the reading of their committed output, shared by the jobs' tests
and the main job's stream stage.

An oracle computes the windows a job must emit for a list of source events under the job's own watermark rule
(bounded out-of-orderness: a window closes once the largest event time seen, minus the bound, reaches its end; a
job stopped with ``--drain`` closes every window), every field of every window, envelope included.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, TopicPartition

from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from stream_processors import (
    category_top_products,
    product_views,
    route_shipment_delays,
    service_error_rate,
    store_order_revenue,
)
from stream_processors.flink_sql import WindowJob, window_event_id

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
E = TypeVar("E", bound=dict[str, Any])
Windows = dict[tuple[Any, ...], dict[str, Any]]


def windows(
    job: WindowJob,
    events: Iterable[E],
    watermark: dt.datetime | None,
    key: Callable[[E], tuple[str, ...]],
    aggregate: Callable[[list[E]], dict[str, Any]],
) -> Windows:
    """Every window the job emits, keyed by (key..., window start): only windows the final ``watermark`` closes
    (end <= watermark; every window when it is None, as after a drain), each with its envelope and every field.
    The job's windows are tumbling, or hopping (an event is in every window starting at a multiple of the slide
    that holds its time)."""
    size, step = dt.timedelta(minutes=job.window_minutes), dt.timedelta(minutes=job.slide)
    grouped: dict[tuple[Any, ...], list[E]] = defaultdict(list)
    for event in events:
        time = event["metadata"]["event_time"]
        start = EPOCH + ((time - EPOCH) // step) * step
        while start + size > time:
            grouped[(*key(event), start)].append(event)
            start -= step
    result = {}
    for (*parts, start), members in grouped.items():
        end = start + size
        if watermark is not None and end > watermark:
            continue
        envelope = {
            "event_id": uuid.UUID(window_event_id(parts, start.replace(tzinfo=None))),
            "event_time": end,
            "producer": job.producer,
            "trace_context": None,
        }
        fields = {**dict(zip(job.key, parts, strict=True)), "window_start": start, "window_end": end}
        result[(*parts, start)] = {"metadata": envelope, **fields, **aggregate(members)}
    return result


def final_watermark(events: list[dict[str, Any]], bound: dt.timedelta) -> dt.datetime:
    """Where the watermark ends once every event is read: the largest event time minus the bound."""
    return max(e["metadata"]["event_time"] for e in events) - bound


def _watermark(events: list[dict[str, Any]], bound: dt.timedelta | None) -> dt.datetime | None:
    return None if bound is None or not events else final_watermark(events, bound)


def product_views_windows(events: list[dict[str, Any]], bound: dt.timedelta | None) -> Windows:
    """``bound`` None: the job was drained, every window closed."""
    return windows(
        product_views.JOB,
        events,
        _watermark(events, bound),
        lambda e: (e["product_id"],),
        lambda members: {
            "view_count": len(members),
            "unique_visitors": len({e["device_id"] for e in members}),
            "last_view_time": max(e["metadata"]["event_time"] for e in members),
        },
    )


def store_order_revenue_windows(events: list[dict[str, Any]], bound: dt.timedelta | None) -> Windows:
    """Placed orders only; all events (placed or not) move the watermark."""
    return windows(
        store_order_revenue.JOB,
        [e for e in events if e["status"] == "PLACED"],
        _watermark(events, bound),
        lambda e: (e["store_id"], e["currency"]),
        lambda members: {
            "order_count": len({e["order_id"] for e in members}),
            "item_count": sum(line["quantity"] for e in members for line in e["line_items"]),
            "revenue": sum((e["order_total"] for e in members), Decimal("0.00")),
        },
    )


def _shipment_delays(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One route's hour: each shipment once (its events, whether DELAYED, its greatest reason, whether DELIVERED and
    its largest delay in days after the promised date, never negative), then the window's figures."""
    shipments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        shipments[event["shipment_id"]].append(event)
    reasons = dict.fromkeys(route_shipment_delays.DELAY_REASONS, 0)
    delays: list[int] = []
    delayed = 0
    for members in shipments.values():
        held = [e["delay_reason"] for e in members if e["status"] == "DELAYED"]
        if held:
            delayed += 1
            reasons[max(held)] += 1
        delivered = [e for e in members if e["status"] == "DELIVERED"]
        if delivered:
            days = [
                max((e["actual_delivery_date"] - e["estimated_delivery_date"]).days, 0)
                for e in delivered
                if e["actual_delivery_date"] is not None
            ]
            delays.append(max(days, default=0))
    return {
        "event_count": len(events),
        "shipment_count": len(shipments),
        "delayed_shipment_count": delayed,
        "delay_rate": delayed / len(shipments),
        "delays_by_reason": reasons,
        "delivered_shipment_count": len(delays),
        "mean_delay_days": sum(delays) / len(delays) if delays else 0.0,
        "max_delay_days": max(delays, default=0),
    }


def route_shipment_delays_windows(events: list[dict[str, Any]], bound: dt.timedelta | None) -> Windows:
    return windows(
        route_shipment_delays.JOB,
        events,
        _watermark(events, bound),
        lambda e: (e["route_id"],),
        _shipment_delays,
    )


def service_error_rate_windows(events: list[dict[str, Any]], bound: dt.timedelta | None) -> Windows:
    def errors(members: list[dict[str, Any]]) -> dict[str, Any]:
        failed = sum(1 for e in members if e["level"] in service_error_rate.ERROR_LEVELS)
        return {"event_count": len(members), "error_count": failed, "error_rate": failed / len(members)}

    return windows(
        service_error_rate.JOB,
        events,
        _watermark(events, bound),
        lambda e: (e["service"],),
        errors,
    )


def category_top_products_windows(events: list[dict[str, Any]], bound: dt.timedelta | None) -> Windows:
    """Enriched product views of a known category only; all of them move the watermark. Per category and hopping
    window, the products ranked by views (descending), then product id, the first ``TOP`` kept."""
    job = category_top_products.JOB
    per_product = windows(
        job,
        [e for e in events if e["product"]["category"] is not None],
        _watermark(events, bound),
        lambda e: (e["product"]["category"], e["event"]["product_id"]),
        lambda members: {
            "view_count": len(members),
            "unique_visitors": len({e["event"]["device_id"] for e in members}),
        },
    )
    rankings: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for window in per_product:
        category, _product, start = window
        rankings[(category, start)].append(window)
    result: Windows = {}
    for ranked in rankings.values():
        ranked.sort(key=lambda window: (-per_product[window]["view_count"], window[1]))
        for rank, window in enumerate(ranked[: category_top_products.TOP], start=1):
            result[window] = {**per_product[window], "rank": rank}
    return result


# each job's oracle, by the job's name
ORACLES: dict[str, Callable[[list[dict[str, Any]], dt.timedelta | None], Windows]] = {
    product_views.JOB.name: product_views_windows,
    store_order_revenue.JOB.name: store_order_revenue_windows,
    route_shipment_delays.JOB.name: route_shipment_delays_windows,
    service_error_rate.JOB.name: service_error_rate_windows,
    category_top_products.JOB.name: category_top_products_windows,
}


def read_committed(
    env: Mapping[str, str], topic: str, start: Mapping[int, int] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Every committed record of ``topic`` (isolation.level=read_committed, up to the last stable offset) from
    ``start`` (per partition; default the beginning), as (key, decoded value); the cluster and the registry are
    ``env``'s (``KAFKA_*``, ``SCHEMA_REGISTRY_*``: a secure stack's login and CAs too)."""
    serde = AvroSerde(registry_client(SchemaRegistrySettings.from_mapping(env)))
    consumer = Consumer(
        {
            **KafkaSettings.from_mapping(env).client_config(),
            "group.id": f"oracle-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        # a topic never written is empty; any other error (not authorized) must not read as "no records"
        if metadata.error is not None and metadata.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise RuntimeError(f"reading {topic}: {metadata.error}")
        partitions = metadata.partitions
        consumer.assign([TopicPartition(topic, p, (start or {}).get(p, 0)) for p in partitions])
        remaining = set(partitions)
        records = []
        while remaining:
            message = consumer.poll(10)
            if message is None:
                raise RuntimeError(f"no end of partitions {sorted(remaining)} of {topic} within 10 s")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    continue
                raise RuntimeError(f"consuming {topic}: {error}")
            key = message.key()
            records.append((key.decode() if key else "", serde.decode(message.value())))
        return records
    finally:
        consumer.close()


def differences(expected: Windows, actual: Windows, limit: int = 5) -> list[str]:
    """What separates ``actual`` windows from ``expected`` ones: missing, unexpected, and for a differing window the
    fields that differ as (actual, expected); the first ``limit`` and how many in all."""
    found = [f"missing {key}" for key in expected.keys() - actual.keys()]
    found += [f"unexpected {key}" for key in actual.keys() - expected.keys()]
    for key in expected.keys() & actual.keys():
        got, want = actual[key], expected[key]
        fields = {
            name: (got.get(name), want.get(name))
            for name in got.keys() | want.keys()
            if got.get(name) != want.get(name)
        }
        if fields:
            found.append(f"differs {key}: {fields}")
    found.sort()
    return found if len(found) <= limit else [*found[:limit], f"... {len(found)} in all"]
