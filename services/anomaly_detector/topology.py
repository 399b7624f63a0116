"""The detector's two stages as pure logic (no broker), shared by the service and the offline evaluation.

Stage 1 (:func:`detector_input`) turns each raw event a detector uses into a ``DetectorInput`` record keyed by the
detector's entity: views by referrer (a referrer's reach over the products needs all its views), errors by one
constant key (each service is compared with all the others), shipment events by route, invoices and payments by
invoice id. It is stateless.

Stage 2 (:class:`Tasks`) keeps one :class:`Detection` per partition of the repartition topic, like a Kafka
Streams task: a partition holds every event of its keys, and its state never mixes with another partition's, so
the detections do not depend on how many instances share the partitions or which one owns which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from schemas.catalogue import Catalogue, load_catalogue
from services.anomaly_detector import detectors
from services.anomaly_detector.settings import (
    CLICKSTREAM,
    INVOICES,
    PAYMENTS,
    SHIPMENTS,
    VIEWS,
    DetectorSettings,
)

SERVICE = "anomaly_detector"
ALL_SERVICES_KEY = "all-services"  # the error comparison spans every service: one key, one partition

EMPTY = {
    "product_id": None,
    "referrer_url": None,
    "service": None,
    "level": None,
    "shipment_id": None,
    "route_id": None,
    "status": None,
    "estimated_delivery_date": None,
    "actual_delivery_date": None,
    "revenue_generated": None,
    "delivery_penalty": None,
    "invoice_id": None,
    "amount": None,
    "currency": None,
}


def _fields(source: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(entity key, the fields the source's detector reads), or None when no detector uses the event."""
    if source == VIEWS:
        referrer = event.get("referrer_url")
        if not referrer:
            return None  # a view without a referrer cannot make a referrer spike
        return str(referrer), {"product_id": str(event["product_id"]), "referrer_url": str(referrer)}
    if source == CLICKSTREAM:
        if event.get("level") != "ERROR" and event.get("event_type") != "ERROR":
            return None
        return ALL_SERVICES_KEY, {"service": str(event["service"]), "level": "ERROR"}
    if source == SHIPMENTS:
        names = ("shipment_id", "route_id", "status", "estimated_delivery_date", "actual_delivery_date")
        picked = {name: event.get(name) for name in names}
        picked.update(
            revenue_generated=event.get("revenue_generated"),
            delivery_penalty=event.get("delivery_penalty"),
            currency=event.get("currency"),
        )
        return str(event["route_id"]), picked
    if source in (INVOICES, PAYMENTS):
        invoice = str(event["invoice_id"])
        return invoice, {"invoice_id": invoice, "amount": event["amount"], "currency": event.get("currency")}
    raise KeyError(f"no detector reads {source}")


def detector_input(source: str, event: dict[str, Any], partition: int, offset: int) -> dict[str, Any] | None:
    """Stage 1: the ``DetectorInput`` record of a raw event of catalogue topic ``source`` (None: not used)."""
    found = _fields(source, event)
    if found is None:
        return None
    key, picked = found
    return {
        "metadata": event["metadata"],
        "entity_key": key,
        "source_topic": source,
        "source_partition": int(partition),
        "source_offset": int(offset),
        **EMPTY,
        **picked,
    }


class Detection:
    """Routes events (by catalogue topic) to the detectors and turns their findings into Anomaly records."""

    def __init__(
        self, settings: DetectorSettings, clock: Callable[[], float] = time.time, catalogue: Catalogue | None = None
    ) -> None:
        catalogue = catalogue or load_catalogue()
        lateness = int(settings.lateness_s * 1000)
        idle = settings.idle_timeout_s
        self.spikes = detectors.ReferrerSpikeDetector(
            lateness_ms=lateness,
            min_views=settings.spike_min_views,
            partitions=catalogue.topic(VIEWS).partitions,
            idle_timeout_s=idle,
        )
        self.errors = detectors.ErrorBurstDetector(
            lateness_ms=lateness,
            threshold=settings.error_threshold,
            partitions=catalogue.topic(CLICKSTREAM).partitions,
            idle_timeout_s=idle,
        )
        self.delays = detectors.ShipmentDelayDetector(
            min_delay_days=settings.delay_min_days, min_shipments=settings.delay_min_shipments
        )
        # A route's shipments come from every source partition: sorted by event time, the delay surges do not
        # depend on how the re-keyed events were interleaved.
        self.shipment_order = detectors.EventTimeOrder(lateness, catalogue.topic(SHIPMENTS).partitions, idle)
        self.payments = detectors.PaymentAmountDetector(min_ratio=settings.payment_min_ratio)
        self.clock = clock
        self.routes: dict[str, Callable[[dict[str, Any], int], list[dict[str, Any]]]] = {
            VIEWS: self.spikes.observe,
            CLICKSTREAM: self.errors.observe,
            SHIPMENTS: self._shipment,
            INVOICES: self.payments.observe_invoice,
            PAYMENTS: self.payments.observe_payment,
        }

    def _shipment(self, event: dict[str, Any], partition: int) -> list[dict[str, Any]]:
        return self._delays(self.shipment_order.push(event, partition))

    def _delays(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [found for event in events for found in self.delays.observe(event)]

    def observe(self, source: str, event: dict[str, Any], partition: int = 0) -> list[dict[str, Any]]:
        """An event of catalogue topic ``source`` from its ``partition``."""
        return [self.envelope(found) for found in self.routes[source](event, partition)]

    def flush(self) -> list[dict[str, Any]]:
        found = self._delays(self.shipment_order.drain())
        found += detectors.flush_all([self.spikes, self.errors, self.delays, self.payments])
        return [self.envelope(item) for item in found]

    def envelope(self, found: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock() * 1000)
        return {
            "metadata": {
                "event_id": found["anomaly_id"],
                "event_time": found["window_end"] - 1,
                "ingest_time": now,
                "producer": SERVICE,
                "trace_context": None,
            },
            **found,
            "detected_at": now,
        }


class Tasks:
    """Stage 2: one :class:`Detection` per partition of the repartition topic, created on its first record."""

    def __init__(
        self, settings: DetectorSettings, clock: Callable[[], float] = time.time, catalogue: Catalogue | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.catalogue = catalogue or load_catalogue()
        self.tasks: dict[int, Detection] = {}

    def observe(self, partition: int, record: dict[str, Any]) -> list[dict[str, Any]]:
        """A ``DetectorInput`` record from ``partition`` of the repartition topic."""
        task = self.tasks.get(partition)
        if task is None:
            task = self.tasks[partition] = Detection(self.settings, self.clock, self.catalogue)
        return task.observe(record["source_topic"], record, record["source_partition"])

    def flush(self, partitions: Iterable[int] | None = None, drop: bool = False) -> list[dict[str, Any]]:
        """Evaluate the open windows of ``partitions`` (all when None): idle input, shutdown; ``drop`` also
        forgets their state (a partition handed to another instance, whose task starts afresh there)."""
        chosen = sorted(self.tasks) if partitions is None else sorted(set(partitions) & set(self.tasks))
        found: list[dict[str, Any]] = []
        for partition in chosen:
            found.extend(self.tasks[partition].flush())
            if drop:
                del self.tasks[partition]
        return found
