"""Pure streaming detectors: per-key event-time windows and state, no broker.

Each detector takes decoded events (``observe``) and returns the anomalies it found as plain dicts shaped like
``com.freightline.analytics.Anomaly`` (minus the envelope, which the service adds). Windows close on an
event-time watermark (the highest event time seen minus the allowed lateness); ``flush`` closes every open
window (end of a bounded run, shutdown).

- :class:`ReferrerSpikeDetector` (``PRODUCT_VIEW_SPIKE``, entity product): views per (product, referrer) in
  hopping windows; a window is anomalous when one referrer brings many views of one product while it reaches
  almost no other product (organic referrers spread over the catalogue). The score is the count over the
  product's baseline (EWMA of its views per window).
- :class:`ErrorBurstDetector` (``ERROR_RATE_SPIKE``, entity service): ERROR events per shop service in hopping
  windows, scored robustly against the median of all services in the same window (bursts of the whole shop
  raise every service alike and are not anomalies).
- :class:`ShipmentDelayDetector` (``SHIPMENT_DELAY_SURGE``, entity route): deliveries later than the promised
  date by at least ``min_delay_days`` clustering on one route within ``window_ms``.
- :class:`PaymentAmountDetector` (``OTHER``, entity invoice): a supplier payment several times its invoice.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ANOMALY_ID_NAMESPACE = uuid.UUID("0c5e3f0a-9a7b-5d7e-8c1f-3b2a6d4e5f70")
MINUTE_MS = 60_000
DAY_MS = 86_400_000


def _ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


def _day(value: Any) -> int:
    """Days since the epoch of an Avro date (an int, or a ``datetime.date`` from converting readers)."""
    if isinstance(value, int):
        return value
    return int(value.toordinal() - 719163)  # date(1970, 1, 1).toordinal()


def anomaly_id(anomaly_type: str, entity_key: str, window_start: int) -> str:
    """Stable across re-detections of the same window (replays, restarts)."""
    return str(uuid.uuid5(ANOMALY_ID_NAMESPACE, f"{anomaly_type}:{entity_key}:{window_start}"))


def evidence(metric: str, observed: float, expected: float | None = None, detail: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "observed": float(observed), "expected": expected, "detail": detail}


def detection(
    anomaly_type: str,
    entity_type: str,
    entity_key: str,
    score: float,
    threshold: float,
    window_start: int,
    window_end: int,
    proofs: list[dict[str, Any]],
    detector: str,
) -> dict[str, Any]:
    return {
        "anomaly_id": anomaly_id(anomaly_type, entity_key, window_start),
        "anomaly_type": anomaly_type,
        "entity_type": entity_type,
        "entity_key": entity_key,
        "score": float(score),
        "threshold": float(threshold),
        "window_start": int(window_start),
        "window_end": int(window_end),
        "evidence": proofs,
        "detector": detector,
    }


@dataclass
class HoppingWindows:
    """Window starts of hopping windows of ``size_ms`` every ``hop_ms`` (tumbling when equal)."""

    size_ms: int
    hop_ms: int

    def starts(self, t: int) -> list[int]:
        last = t - t % self.hop_ms
        first = last - self.size_ms + self.hop_ms
        return list(range(max(first, 0), last + 1, self.hop_ms))


@dataclass
class Watermark:
    """Event-time watermark of one detector: the slowest partition's highest event time minus the lateness.

    Partitions are consumed at different speeds (a backlog is fetched partition by partition), so a watermark
    over all records would run ahead of a lagging partition and drop its events as late. A partition that gave
    no record for ``idle_timeout_s`` (of ``clock``, processing time) is left out of the minimum, and so is one
    never heard from once that long has passed since the first record: an idle partition does not hold every
    window open. Its records, when they come back, count again (those for windows already closed are late).
    """

    lateness_ms: int
    partitions: int = 1
    idle_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    highest: dict[Any, int] = field(default_factory=dict)
    heard: dict[Any, float] = field(default_factory=dict)
    started: float | None = None

    def advance(self, t: int, partition: Any = None) -> int:
        now = self.clock()
        if self.started is None:
            self.started = now
        if t > self.highest.get(partition, -1):
            self.highest[partition] = t
        self.heard[partition] = now
        idle = self.idle_timeout_s
        if len(self.highest) < self.partitions and now - self.started < idle:
            return -(1 << 62)  # not every partition was heard from yet: close nothing
        active = [high for part, high in self.highest.items() if now - self.heard[part] < idle]
        return min(active) - self.lateness_ms


@dataclass
class EventTimeOrder:
    """Hands events on in event-time order once the :class:`Watermark` (per source partition) passed them.

    The events of one key come from several source partitions, interleaved in whatever order the instances that
    re-keyed them produced: a detector whose outcome depends on the order of its events gets them sorted by (event
    time, source partition, order within the partition), the same order however the input was interleaved. An
    event the watermark already passed (only after an idle partition was left out of it) is handed on at once.
    """

    lateness_ms: int
    partitions: int = 1
    idle_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    heap: list[tuple[int, int, int, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.watermark = Watermark(self.lateness_ms, self.partitions, self.idle_timeout_s, self.clock)
        self._arrival = itertools.count()

    def push(self, event: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        t = _ms(event["metadata"]["event_time"])
        mark = self.watermark.advance(t, partition)
        order = partition if isinstance(partition, int) else -1
        heapq.heappush(self.heap, (t, order, next(self._arrival), event))
        released = []
        while self.heap and self.heap[0][0] <= mark:
            released.append(heapq.heappop(self.heap)[3])
        return released

    def drain(self) -> list[dict[str, Any]]:
        released = [item[3] for item in sorted(self.heap)]
        self.heap.clear()
        return released


@dataclass
class Incidents:
    """Folds the window detections of one (type, entity) into incidents: a detection whose window starts at or
    before the open incident's end extends it (window end, peak score and its evidence, window count). An
    incident is emitted once, when the watermark passes its end by ``close_after_ms`` (no later window can
    overlap it then) or on flush; its id is that of its first window, so replays give the same id."""

    close_after_ms: int
    open: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ready: list[dict[str, Any]] = field(default_factory=list)

    def fold(self, found: list[dict[str, Any]], mark: int) -> list[dict[str, Any]]:
        for item in found:
            key = (item["anomaly_type"], item["entity_key"])
            current = self.open.get(key)
            if current is not None and item["window_start"] > current["window_end"]:
                self.ready.append(self.open.pop(key))
                current = None
            if current is None:
                self.open[key] = {**item, "windows": 1}
                continue
            current["window_end"] = max(current["window_end"], item["window_end"])
            current["windows"] += 1
            if item["score"] > current["score"]:
                current.update(score=item["score"], evidence=item["evidence"])
        for key in [k for k, v in self.open.items() if v["window_end"] + self.close_after_ms <= mark]:
            self.ready.append(self.open.pop(key))
        ready, self.ready = sorted(self.ready, key=lambda x: (x["window_start"], x["entity_key"])), []
        return [self._record(incident) for incident in ready]

    def flush(self) -> list[dict[str, Any]]:
        return self.fold([], 1 << 62)

    @staticmethod
    def _record(incident: dict[str, Any]) -> dict[str, Any]:
        windows = incident.pop("windows")
        proof = evidence("windows", windows, None, "consecutive anomalous windows folded into the incident")
        return {**incident, "evidence": [*incident["evidence"], proof]}


@dataclass
class WindowedDetector(ABC):
    """What the hopping-window detectors share: windows of ``size_ms`` every ``hop_ms`` closed by an event-time
    :class:`Watermark`, the detections of a closed window (``_evaluate``) folded into :class:`Incidents`.
    ``_open_windows`` holds the state of every open window, by window start."""

    size_ms: int = 2 * MINUTE_MS
    hop_ms: int = MINUTE_MS
    lateness_ms: int = 35_000
    partitions: int = 1
    idle_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._hopping = HoppingWindows(self.size_ms, self.hop_ms)
        self.watermark = Watermark(self.lateness_ms, self.partitions, self.idle_timeout_s, self.clock)
        self.incidents = Incidents(self.size_ms)

    def flush(self) -> list[dict[str, Any]]:
        return self._close(1 << 62)

    @abstractmethod
    def _open_windows(self) -> dict[int, Any]: ...

    @abstractmethod
    def _evaluate(self, start: int) -> list[dict[str, Any]]:
        """The detections of the window starting at ``start``, whose state it takes out of the open windows."""

    def _close(self, mark: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in sorted(s for s in self._open_windows() if s + self.size_ms <= mark):
            found.extend(self._evaluate(start))
        return self.incidents.fold(found, mark)


# -- traffic spikes --------------------------------------------------------------------------------------------


@dataclass
class ReferrerSpikeDetector(WindowedDetector):
    """Views of one product from one referrer that reaches (almost) no other product."""

    min_views: int = 60
    max_referrer_products: int = 2
    threshold: float = 4.0
    alpha: float = 0.2
    windows: dict[int, dict[tuple[str, str], int]] = field(default_factory=dict)
    product_totals: dict[int, dict[str, int]] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)

    NAME = "referrer_view_spike/1"

    def observe(self, view: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        t = _ms(view["metadata"]["event_time"])
        mark = self.watermark.advance(t, partition)
        product = str(view["product_id"])
        referrer = view.get("referrer_url")
        for start in self._hopping.starts(t):
            if start + self.size_ms <= mark:
                continue  # this window already closed: a too-late event
            totals = self.product_totals.setdefault(start, defaultdict(int))
            totals[product] += 1
            if referrer:
                counts = self.windows.setdefault(start, defaultdict(int))
                counts[(product, referrer)] += 1
        return self._close(mark)

    def _open_windows(self) -> dict[int, Any]:
        return self.product_totals  # every view counts there; only views with a referrer in ``windows``

    def _evaluate(self, start: int) -> list[dict[str, Any]]:
        counts = self.windows.pop(start, {})
        totals = self.product_totals.pop(start, {})
        reach: dict[str, int] = defaultdict(int)
        for _product, referrer in counts:
            reach[referrer] += 1
        found = []
        for (product, referrer), count in counts.items():
            if count < self.min_views or reach[referrer] > self.max_referrer_products:
                continue
            expected = self.baseline.get(product, 0.0)
            score = count / max(expected, 1.0)
            if score < self.threshold:
                continue
            found.append(
                detection(
                    "PRODUCT_VIEW_SPIKE",
                    "product",
                    product,
                    score,
                    self.threshold,
                    start,
                    start + self.size_ms,
                    [
                        evidence("view_count", count, expected, f"views from referrer {referrer}"),
                        evidence("referrer_products", reach[referrer], None, "products the referrer reached"),
                    ],
                    self.NAME,
                )
            )
        for product, total in totals.items():
            # Views from concentrated referrers (one or two products) never enter the organic baseline.
            concentrated = sum(
                c for (p, r), c in counts.items() if p == product and reach[r] <= self.max_referrer_products
            )
            organic = total - concentrated
            previous = self.baseline.get(product)
            self.baseline[product] = organic if previous is None else previous + self.alpha * (organic - previous)
        return found


# -- error bursts ----------------------------------------------------------------------------------------------


@dataclass
class ErrorBurstDetector(WindowedDetector):
    """ERROR events of one service far above the other services' median in the same window."""

    threshold: float = 5.0
    min_excess: int = 30
    min_ratio: float = 1.3
    services: set[str] = field(default_factory=set)
    windows: dict[int, dict[str, int]] = field(default_factory=dict)

    NAME = "service_error_burst_robust_z/1"

    def observe(self, click: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        t = _ms(click["metadata"]["event_time"])
        mark = self.watermark.advance(t, partition)
        if click.get("level") == "ERROR" or click.get("event_type") == "ERROR":
            service = str(click["service"])
            self.services.add(service)
            for start in self._hopping.starts(t):
                if start + self.size_ms > mark:
                    self.windows.setdefault(start, defaultdict(int))[service] += 1
        return self._close(mark)

    def _open_windows(self) -> dict[int, Any]:
        return self.windows

    def _evaluate(self, start: int) -> list[dict[str, Any]]:
        counts = self.windows.pop(start)
        if len(self.services) < 3:
            return []  # no robust reference yet
        # The reference is the lower quartile of the services' counts: shop-wide bursts raise it like every
        # service, and it stays put while up to three quarters of the services burst at once (a median does not).
        values = sorted(counts.get(service, 0) for service in self.services)
        median = float(values[(len(values) - 1) // 4])
        found = []
        for service, count in counts.items():
            excess = count - median
            score = excess / math.sqrt(max(median, 1.0))
            if score >= self.threshold and excess >= self.min_excess and count >= self.min_ratio * median:
                found.append(
                    detection(
                        "ERROR_RATE_SPIKE",
                        "service",
                        service,
                        score,
                        self.threshold,
                        start,
                        start + self.size_ms,
                        [evidence("error_count", count, float(median), "median over the shop's services")],
                        self.NAME,
                    )
                )
        return found


# -- shipment delays -------------------------------------------------------------------------------------------


@dataclass
class ShipmentDelayDetector:
    """Several deliveries on one route later than promised by ``min_delay_days`` or more, close in time."""

    min_delay_days: int = 4
    min_shipments: int = 2
    window_ms: int = 15 * MINUTE_MS
    late: dict[str, deque[tuple[int, int, str]]] = field(default_factory=lambda: defaultdict(deque))
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)

    NAME = "route_delivery_delay_surge/1"

    penalty_rate: Decimal = Decimal("0.05")

    def delay_days(self, event: dict[str, Any]) -> int | None:
        """Days past the promise: measured on delivery, announced by the penalty of a DELAYED status event."""
        status = event.get("status")
        if status == "DELIVERED" and event.get("actual_delivery_date") is not None:
            return _day(event["actual_delivery_date"]) - _day(event["estimated_delivery_date"])
        if status == "DELAYED":
            revenue = Decimal(event.get("revenue_generated") or 0)
            penalty = Decimal(event.get("delivery_penalty") or 0)
            if revenue > 0 and penalty > 0:
                return int((penalty / (revenue * self.penalty_rate)).to_integral_value())
        return None

    def observe(self, event: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        """A late shipment: opens the route's incident once ``min_shipments`` fall within ``window_ms``, and
        extends an open one (while late shipments keep coming within ``window_ms`` of the last); every change
        is emitted as an update of the same ``anomaly_id`` (the latest record of an id is the incident)."""
        delay = self.delay_days(event)
        if delay is None or delay < self.min_delay_days:
            return []
        route = str(event["route_id"])
        t = _ms(event["metadata"]["event_time"])
        recent = self.late[route]
        shipment = str(event["shipment_id"])
        incident = self.incidents.get(route)
        if incident is not None and t > incident["last"] + self.window_ms:
            del self.incidents[route]
            incident = None
        if any(s == shipment for _, _, s in recent) or (incident is not None and shipment in incident["shipments"]):
            return []  # another event of a shipment already counted, or a replay
        recent.append((t, delay, shipment))
        while recent and recent[0][0] < t - self.window_ms:
            recent.popleft()
        if incident is None:
            if len(recent) < self.min_shipments:
                return []
            incident = self.incidents[route] = {
                "first": min(when for when, _, _ in recent),
                "last": t,
                "delays": [d for _, d, _ in recent],
                "shipments": {s for _, _, s in recent},
            }
        else:
            incident["last"] = max(incident["last"], t)
            incident["delays"].append(delay)
            incident["shipments"].add(shipment)
        delays = incident["delays"]
        return [
            detection(
                "SHIPMENT_DELAY_SURGE",
                "route",
                route,
                float(len(delays)),
                float(self.min_shipments),
                incident["first"],
                incident["last"] + 1,
                [
                    evidence("late_deliveries", len(delays), None, f"delivered >= {self.min_delay_days} days late"),
                    evidence("mean_delay_days", sum(delays) / len(delays), None, None),
                ],
                self.NAME,
            )
        ]

    def flush(self) -> list[dict[str, Any]]:
        return []


# -- payments ----------------------------------------------------------------------------------------------------


@dataclass
class PaymentAmountDetector:
    """A payment of at least ``min_ratio`` times its invoice (invoices and payments share the invoice id key)."""

    min_ratio: float = 3.0
    max_invoices: int = 200_000
    invoices: OrderedDict[str, tuple[Decimal, int]] = field(default_factory=OrderedDict)
    payments: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    NAME = "payment_invoice_ratio/1"

    def observe_invoice(self, invoice: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        key = str(invoice["invoice_id"])
        self.invoices[key] = (Decimal(invoice["amount"]), _ms(invoice["metadata"]["event_time"]))
        self.invoices.move_to_end(key)
        while len(self.invoices) > self.max_invoices:
            self.invoices.popitem(last=False)
        waiting = self.payments.pop(key, None)  # topics are consumed independently: the payment may come first
        return self.observe_payment(waiting) if waiting is not None else []

    def observe_payment(self, payment: dict[str, Any], partition: Any = None) -> list[dict[str, Any]]:
        key = str(payment["invoice_id"])
        invoiced = self.invoices.get(key)
        if invoiced is None:
            self.payments[key] = payment
            while len(self.payments) > self.max_invoices:
                self.payments.popitem(last=False)
            return []
        if invoiced[0] <= 0:
            return []
        amount = Decimal(payment["amount"])
        ratio = float(amount / invoiced[0])
        if ratio < self.min_ratio:
            return []
        t = _ms(payment["metadata"]["event_time"])
        return [
            detection(
                "OTHER",
                "invoice",
                key,
                ratio,
                self.min_ratio,
                t,
                t + 1,
                [
                    evidence("payment_to_invoice_ratio", ratio, 1.0, "supplier payment far above the invoiced amount"),
                    evidence("payment_amount", float(amount), float(invoiced[0]), None),
                ],
                self.NAME,
            )
        ]

    def flush(self) -> list[dict[str, Any]]:
        return []


def flush_all(detectors: Iterable[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for detector in detectors:
        found.extend(detector.flush())
    return found
