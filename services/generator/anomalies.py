"""Labelled anomalies: the kinds the generator injects on purpose and the ground truth it publishes about them.

Each injection is a burst of events that a detector should flag: a traffic spike on one product from one
referrer, shipments on one route running past their promised dates, an error burst in one shop service, or
a fraud-like supplier payment. The injection remembers the ids and event times of every event it produced;
after the last of them one ``AnomalyLabel`` is published (topic ``analytics.anomaly_labels.v1``,
keyed by the entity) so that detectors can be scored against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AnomalyKind(StrEnum):
    """The injections the generator knows, each mapped to an ``AnomalyType`` symbol of the contract."""

    TRAFFIC_SPIKE = "traffic_spike"
    SHIPMENT_DELAY = "shipment_delay"
    ERROR_BURST = "error_burst"
    FRAUD_PAYMENT = "fraud_payment"

    @property
    def anomaly_type(self) -> str:
        return _ANOMALY_TYPES[self]


_ANOMALY_TYPES = {
    AnomalyKind.TRAFFIC_SPIKE: "PRODUCT_VIEW_SPIKE",
    AnomalyKind.SHIPMENT_DELAY: "SHIPMENT_DELAY_SURGE",
    AnomalyKind.ERROR_BURST: "ERROR_RATE_SPIKE",
    # The contract has no dedicated symbol for payment amounts; OTHER with a description marks them.
    AnomalyKind.FRAUD_PAYMENT: "OTHER",
}


@dataclass
class Injection:
    """One injected anomaly and the events it produced (ids and event times, in creation order)."""

    kind: AnomalyKind
    label_id: str
    entity_type: str
    entity_key: str
    description: str
    event_ids: list[str] = field(default_factory=list)
    event_times: list[int] = field(default_factory=list)
    emitted_ids: list[str] = field(default_factory=list)
    emitted_times: list[int] = field(default_factory=list)
    last_produce_ms: int = -1  # the latest produce time of its events: the label leaves after it
    labelled: bool = False

    def add(self, event_id: str, event_time_ms: int, produce_time_ms: int) -> None:
        self.event_ids.append(event_id)
        self.event_times.append(event_time_ms)
        self.last_produce_ms = max(self.last_produce_ms, produce_time_ms)

    def emitted(self, event_id: str, event_time_ms: int) -> None:
        self.emitted_ids.append(event_id)
        self.emitted_times.append(event_time_ms)


def label_record(injection: Injection, metadata: dict[str, Any], *, emitted_only: bool = False) -> dict[str, Any]:
    """The ``AnomalyLabel`` of ``injection`` (all its events, or only those emitted so far)."""
    ids = injection.emitted_ids if emitted_only else injection.event_ids
    times = injection.emitted_times if emitted_only else injection.event_times
    if not ids:
        raise ValueError("an anomaly label needs at least one event")
    return {
        "metadata": metadata,
        "label_id": injection.label_id,
        "anomaly_type": injection.kind.anomaly_type,
        "entity_type": injection.entity_type,
        "entity_key": injection.entity_key,
        "event_ids": list(ids),
        "start_time": min(times),
        "end_time": max(times) + 1,
        "description": injection.description,
    }
