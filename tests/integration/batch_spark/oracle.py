"""The daily tables computed in plain Python from the events themselves (the test's oracle, independent of Spark).

The same definitions as ``batch_spark`` states them in words: a day is the UTC date of the event time; rows that
break a contract invariant are rejected with the first broken rule's reason; one row per event id; then seed 004's
three daily tables, the orders placed per store and currency, the shipments delivered on time per route and
carrier, supplier payment delays and clickstream error rates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DIRECT = "(direct)"


def event_time(value: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(value["metadata"]["event_time"] / 1000, dt.UTC)


def _line_checks(value: dict[str, Any]) -> list[tuple[str, bool]]:
    lines = value["line_items"]
    return [
        ("negative money: order_total", value["order_total"] < 0),
        ("no line items", not lines),
        ("negative money: line price", any(line["price"] < 0 for line in lines)),
        (
            "line sales_amount is not price x quantity",
            any(line["sales_amount"] != line["price"] * line["quantity"] for line in lines),
        ),
        (
            "order_total is not the sum of the lines' sales_amount",
            sum((line["sales_amount"] for line in lines), Decimal(0)) != value["order_total"],
        ),
        ("ship_date before order_date", value["ship_date"] is not None and value["ship_date"] < value["order_date"]),
    ]


FAMILY_CHECKS: dict[str, Callable[[dict[str, Any]], list[tuple[str, bool]]]] = {
    "orders": _line_checks,
    "shipment_events": lambda v: [
        (
            "negative money: shipment cost, revenue or penalty",
            min(v["shipment_cost"], v["revenue_generated"], v["delivery_penalty"]) < 0,
        )
    ],
    "clickstream": lambda v: [("negative session duration", v["session_duration_seconds"] < 0)],
    "product_views": lambda v: [],
    "supplier_invoices": lambda v: [
        ("negative money: amount", v["amount"] < 0),
        ("due_date before issue_date", v["due_date"] < v["issue_date"]),
    ],
    "supplier_payments": lambda v: [
        ("negative money: amount", v["amount"] < 0),
        ("payment_delay_days is not paid_date - due_date", v["payment_delay_days"] != v["paid_date"] - v["due_date"]),
    ],
}


def reason(family: str, value: dict[str, Any]) -> str | None:
    event_id = value["metadata"]["event_id"]
    checks = [("event_id is not a UUID", not isinstance(event_id, str) or not UUID.match(event_id))]
    checks += FAMILY_CHECKS[family](value)
    return next((why for why, broken in checks if broken), None)


def _round(value: Decimal, unit: str) -> Decimal:
    return value.quantize(Decimal(unit), ROUND_HALF_UP)


class Day:
    """One day of the events of every family: clean rows (one per event id), rejections, duplicates."""

    def __init__(self, day: dt.date, events: Mapping[str, Iterable[dict[str, Any]]]) -> None:
        self.day = day
        self.clean: dict[str, list[dict[str, Any]]] = {}
        self.rejected: dict[str, list[tuple[str, str]]] = {}
        self.read: dict[str, int] = {}
        self.duplicates: dict[str, int] = {}
        for family, values in events.items():
            of_day = [v for v in values if event_time(v).date() == day]
            self.read[family] = len(of_day)
            seen: dict[str, dict[str, Any]] = {}
            rejected = []
            for value in of_day:
                why = reason(family, value)
                if why is not None:
                    rejected.append((str(value["metadata"]["event_id"]), why))
                    continue
                current = seen.get(value["metadata"]["event_id"])
                if current is None or value["metadata"]["ingest_time"] < current["metadata"]["ingest_time"]:
                    seen[value["metadata"]["event_id"]] = value
            self.clean[family] = list(seen.values())
            self.rejected[family] = rejected
            self.duplicates[family] = len(of_day) - len(rejected) - len(seen)

    def tables(self) -> dict[str, set[tuple[Any, ...]]]:
        """Every daily table's rows, each a tuple in the table's column order."""
        views = self.clean["product_views"]
        per_product: dict[str, list[dict[str, Any]]] = defaultdict(list)
        per_store: dict[str, list[dict[str, Any]]] = defaultdict(list)
        per_referrer: dict[str, int] = defaultdict(int)
        for view in views:
            per_product[view["product_id"]].append(view)
            per_store[view["store_id"]].append(view)
            per_referrer[view["referrer_url"] if view["referrer_url"] is not None else DIRECT] += 1
        revenue: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for order in self.clean["orders"]:
            if order["status"] == "PLACED":
                revenue[(order["store_id"], order["currency"])].append(order)
        delays: dict[str, list[int]] = defaultdict(list)
        for payment in self.clean["supplier_payments"]:
            delays[payment["supplier_id"]].append(payment["paid_date"] - payment["due_date"])
        delivered: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
        for event in self.clean["shipment_events"]:
            if event["status"] == "DELIVERED":
                on_time = event["actual_delivery_date"] is not None and (
                    event["actual_delivery_date"] <= event["estimated_delivery_date"]
                )
                shipments = delivered[(event["route_id"], event["carrier"])]
                shipments[event["shipment_id"]] = shipments.get(event["shipment_id"], False) or on_time
        clicks: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for click in self.clean["clickstream"]:
            clicks[click["service"]].append(click)
        return {
            "supplier_payment_delay_daily": {
                (s, len(d), sum(d), max(d), _round(Decimal(sum(d)) / len(d), "0.01"), self.day)
                for s, d in delays.items()
            },
            "shipment_on_time_daily": {
                (
                    route,
                    carrier,
                    len(shipments),
                    on_time := sum(shipments.values()),
                    _round(Decimal(on_time) / len(shipments), "0.000001"),
                    self.day,
                )
                for (route, carrier), shipments in delivered.items()
            },
            "clickstream_errors_daily": {
                (
                    service,
                    len(events),
                    errors := sum(1 for e in events if e["event_type"] == "ERROR"),
                    _round(Decimal(errors) / len(events), "0.000001"),
                    self.day,
                )
                for service, events in clicks.items()
            },
            "product_views_daily": {
                (p, len(vs), len({v["device_id"] for v in vs}), max(event_time(v) for v in vs), self.day)
                for p, vs in per_product.items()
            },
            "country_views_daily": {
                (s, len(vs), len({v["device_id"] for v in vs}), self.day) for s, vs in per_store.items()
            },
            "referrer_views_daily": {(r, n, self.day) for r, n in per_referrer.items()},
            "order_revenue_daily": {
                (
                    store,
                    currency,
                    len({o["order_id"] for o in orders}),
                    sum(line["quantity"] for o in orders for line in o["line_items"]),
                    sum((o["order_total"] for o in orders), Decimal("0.00")),
                    self.day,
                )
                for (store, currency), orders in revenue.items()
            },
        }
