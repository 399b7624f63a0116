"""Plain-Python oracles of the windowed jobs: events out of order within a bound, and the windows a job must emit for
them under the job's own watermark rule (bounded out-of-orderness: a window closes once the largest event time seen,
minus the bound, reaches its end), every field of every window."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from stream_processors import product_views, store_order_revenue
from stream_processors.flink_sql import WindowJob, window_event_id

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
E = TypeVar("E", bound=dict[str, Any])


def event_times(
    rng: random.Random, count: int, start: dt.datetime, bound: dt.timedelta, max_step_ms: int = 400
) -> list[dt.datetime]:
    """``count`` event times in produce order over minutes of event time, out of order by up to ``bound``: each lies
    in [clock - bound, clock] while the clock only advances, so no event is ever later than the watermark (which
    trails the largest event time seen by ``bound``)."""
    times = []
    clock = start
    for _ in range(count):
        clock += dt.timedelta(milliseconds=rng.randint(0, max_step_ms))
        times.append(clock - dt.timedelta(milliseconds=rng.randint(0, int(bound.total_seconds() * 1000))))
    return times


def metadata(event_time: dt.datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_time": event_time,
        "ingest_time": event_time,
        "producer": "flink-oracle-test",
        "trace_context": None,
    }


def product_views_events(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "metadata": metadata(time),
            "product_id": f"P-{rng.randint(1, 12)}",
            "device_id": f"D-{rng.randint(1, 40)}",
            "store_id": "DE",
            "referrer_url": None,
            "local_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "remote_ip": None,
        }
        for time in event_times(rng, count, start, bound)
    ]


def orders_events(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[dict[str, Any]]:
    """Orders of a few stores in two currencies, each placed and some later shipped (only placements count)."""
    rng = random.Random(seed)
    events = []
    for i, time in enumerate(event_times(rng, count, start, bound, max_step_ms=1000)):
        store, currency = rng.choice([("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("CH", "CHF"), ("CH", "EUR")])
        lines: list[dict[str, Any]] = []
        for number in range(1, rng.randint(1, 4) + 1):
            quantity, price = rng.randint(1, 5), Decimal(rng.randint(1, 99_999)) / 100
            lines.append(
                {
                    "line_number": number,
                    "product_id": f"P-{rng.randint(1, 50)}",
                    "quantity": quantity,
                    "price": price,
                    "sales_amount": price * quantity,
                }
            )
        day = time.date()
        events.append(
            {
                "metadata": metadata(time),
                "order_id": f"O-{seed}-{i}",
                "customer_id": f"C-{rng.randint(1, 100)}",
                "store_id": store,
                "status": "SHIPPED" if rng.random() < 0.2 else "PLACED",
                "order_date": day,
                "ship_date": None,
                "due_date": day + dt.timedelta(days=3),
                "currency": currency,
                "line_items": lines,
                "order_total": sum((Decimal(line["sales_amount"]) for line in lines), Decimal("0.00")),
            }
        )
    return events


def windows(
    job: WindowJob,
    events: Iterable[E],
    watermark: dt.datetime,
    size: dt.timedelta,
    key: Callable[[E], tuple[str, ...]],
    aggregate: Callable[[list[E]], dict[str, Any]],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every window the job emits, keyed by (key..., window start): only windows the final ``watermark`` closes
    (end <= watermark), each with its envelope and every field of the aggregate."""
    grouped: dict[tuple[Any, ...], list[E]] = defaultdict(list)
    for event in events:
        time = event["metadata"]["event_time"]
        grouped[(*key(event), EPOCH + ((time - EPOCH) // size) * size)].append(event)
    result = {}
    for (*parts, start), members in grouped.items():
        end = start + size
        if end > watermark:
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


def product_views_windows(events: list[dict[str, Any]], bound: dt.timedelta) -> dict[tuple[Any, ...], dict[str, Any]]:
    return windows(
        product_views.JOB,
        events,
        final_watermark(events, bound),
        dt.timedelta(minutes=1),
        lambda e: (e["product_id"],),
        lambda members: {
            "view_count": len(members),
            "unique_visitors": len({e["device_id"] for e in members}),
            "last_view_time": max(e["metadata"]["event_time"] for e in members),
        },
    )


def store_order_revenue_windows(
    events: list[dict[str, Any]], bound: dt.timedelta
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Placed orders only; all events (placed or not) move the watermark."""
    return windows(
        store_order_revenue.JOB,
        [e for e in events if e["status"] == "PLACED"],
        final_watermark(events, bound),
        dt.timedelta(minutes=5),
        lambda e: (e["store_id"], e["currency"]),
        lambda members: {
            "order_count": len({e["order_id"] for e in members}),
            "item_count": sum(line["quantity"] for e in members for line in e["line_items"]),
            "revenue": sum((e["order_total"] for e in members), Decimal("0.00")),
        },
    )
