"""Plain-Python oracles of the windowed jobs: the windows a job must emit for a list of events, under the job's own
watermark rule (bounded out-of-orderness: a window closes once the largest event time seen, minus the bound, reaches
its end), and a reader of a job's committed Kafka output."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from services.common.serde import AvroSerde, registry_client
from services.common.settings import SchemaRegistrySettings
from stream_processors.product_views import PRODUCER, window_event_id

MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class View:
    event_time: dt.datetime
    product_id: str
    device_id: str


def views_within_bound(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[View]:
    """``count`` views in produce order over about ten minutes of event time, out of order by up to ``bound``:
    each view's event time lies in [clock - bound, clock] while the clock only advances, so no view is ever later
    than the watermark (which trails the largest event time seen by ``bound``)."""
    rng = random.Random(seed)
    views = []
    clock = start
    for _ in range(count):
        clock += dt.timedelta(milliseconds=rng.randint(0, 400))
        late_by = dt.timedelta(milliseconds=rng.randint(0, int(bound.total_seconds() * 1000)))
        views.append(View(clock - late_by, f"P-{rng.randint(1, 12)}", f"D-{rng.randint(1, 40)}"))
    return views


def view_record(view: View) -> dict[str, Any]:
    return {
        "metadata": {
            "event_id": str(uuid.uuid4()),
            "event_time": view.event_time,
            "ingest_time": view.event_time,
            "producer": "flink-oracle-test",
            "trace_context": None,
        },
        "product_id": view.product_id,
        "device_id": view.device_id,
        "store_id": "DE",
        "referrer_url": None,
        "local_time": view.event_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "remote_ip": None,
    }


def window_of(time: dt.datetime, size: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + ((time - epoch) // size) * size


def product_view_windows(views: list[View], bound: dt.timedelta) -> dict[tuple[str, dt.datetime], dict[str, Any]]:
    """Every product-view window the job emits, keyed by (product, window start): only windows the final
    watermark closes (end <= largest event time - bound), each with every field of the aggregate."""
    watermark = max(v.event_time for v in views) - bound
    grouped: dict[tuple[str, dt.datetime], list[View]] = defaultdict(list)
    for view in views:
        grouped[(view.product_id, window_of(view.event_time, MINUTE))].append(view)
    windows = {}
    for (product, start), members in grouped.items():
        end = start + MINUTE
        if end > watermark:
            continue
        windows[(product, start)] = {
            "metadata": {
                "event_id": uuid.UUID(window_event_id(product, start.replace(tzinfo=None))),
                "event_time": end,
                "producer": PRODUCER,
                "trace_context": None,
            },
            "product_id": product,
            "window_start": start,
            "window_end": end,
            "view_count": len(members),
            "unique_visitors": len({v.device_id for v in members}),
            "last_view_time": max(v.event_time for v in members),
        }
    return windows


def read_committed(bootstrap: str, registry_url: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every committed record of ``topic`` (isolation.level=read_committed, up to the last stable offset), as
    (key, decoded value)."""
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url)))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"oracle-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining = set(partitions)
        records = []
        while remaining:
            message = consumer.poll(10)
            if message is None:
                raise AssertionError(f"no end of partitions {sorted(remaining)} of {topic} within 10 s")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    continue
                raise AssertionError(f"consuming {topic}: {error}")
            key = message.key()
            records.append((key.decode() if key else "", serde.decode(message.value())))
        return records
    finally:
        consumer.close()
