"""Source events of the windowed jobs' tests: out of order within a bound, never later than the watermark (the
windows they must give are computed by ``stream_processors.oracle``)."""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

from schemas.catalogue import example


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


def shipment_events(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[dict[str, Any]]:
    """Events of a few dozen shipments on four routes over hours, some DELAYED (with a reason, some shipments with
    two), some DELIVERED on time, early or days late against the promised date."""
    rng = random.Random(seed)
    base = example("com.freightline.logistics.ShipmentEvent")
    reasons = ["WEATHER", "CUSTOMS", "TRAFFIC", "OTHER"]
    events = []
    for time in event_times(rng, count, start, bound, max_step_ms=20_000):
        shipment = rng.randint(1, 60)
        status = rng.choices(["IN_TRANSIT", "DELAYED", "DELIVERED", "PENDING"], [5, 2, 2, 1])[0]
        promised = time.date() + dt.timedelta(days=rng.randint(-1, 2))
        event = copy.deepcopy(base)
        event.update(
            metadata=metadata(time),
            shipment_id=f"S-{seed}-{shipment}",
            route_id=f"R-{shipment % 4}",
            status=status,
            estimated_delivery_date=promised,
            actual_delivery_date=promised + dt.timedelta(days=rng.randint(-2, 4)) if status == "DELIVERED" else None,
            delay_reason=rng.choice(reasons) if status == "DELAYED" else None,
        )
        events.append(event)
    return events


def clickstream_events(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[dict[str, Any]]:
    """Log events of a few shop services over minutes: mostly INFO, some WARNING, ERROR (with error details) and
    CRITICAL, each service with its own error share."""
    rng = random.Random(seed)
    base = example("com.freightline.web.ClickstreamEvent")
    shares = {"search": 0.02, "checkout": 0.1, "orders": 0.05, "catalog": 0.3}
    events = []
    for time in event_times(rng, count, start, bound, max_step_ms=400):
        service = rng.choice(sorted(shares))
        roll = rng.random()
        level = "ERROR" if roll < shares[service] else "CRITICAL" if roll < shares[service] * 1.2 else "INFO"
        if level == "INFO" and rng.random() < 0.1:
            level = "WARNING"
        event = copy.deepcopy(base)
        event.update(
            metadata=metadata(time),
            service=service,
            level=level,
            event_type="ERROR" if level != "INFO" and level != "WARNING" else "SEARCH",
            session_id=f"S-{rng.randint(1, 50)}",
            details=(
                ("com.freightline.web.ErrorDetails", {"error_code": "E500", "error_message": "internal error"})
                if level in ("ERROR", "CRITICAL")
                else ("com.freightline.web.SearchDetails", {"query": "shoes", "result_count": rng.randint(0, 99)})
            ),
        )
        events.append(event)
    return events


def enriched_view_events(seed: int, count: int, start: dt.datetime, bound: dt.timedelta) -> list[dict[str, Any]]:
    """Enriched product views over tens of minutes: a few categories of unevenly popular products (so rankings hold
    ties and more than ten products per category), and views of products the enrichment did not know (no category)."""
    rng = random.Random(seed)
    base = example("com.freightline.enriched.EnrichedProductView")
    categories = ("Sports", "Books", "Garden")
    events = []
    for time in event_times(rng, count, start, bound, max_step_ms=800):
        event = copy.deepcopy(base)
        product = min(int(rng.expovariate(0.08)), 59)
        product_id = f"P-{product:02d}"
        known = product < 55
        event.update(metadata=metadata(time))
        event["event"].update(metadata=metadata(time), product_id=product_id, device_id=f"D-{rng.randint(1, 30)}")
        event["product"].update(
            product_id=product_id,
            status="KNOWN" if known else "UNKNOWN",
            name=f"Product {product}" if known else None,
            category=categories[product % 3] if known else None,
            subcategory=None,
            brand=None if not known else "Northpeak",
            price=event["product"]["price"] if known else None,
            currency="EUR" if known else None,
        )
        events.append(event)
    return events
