"""Score detections against the generator's ground truth: precision and recall per anomaly type.

A detection (one incident of the detector) matches a label when both have the same anomaly type and entity key
and their event-time windows overlap (within ``tolerance_ms``, default one minute, for window alignment).
Precision per type = matching detections / detections; recall = labels matched by some detection / labels;
detections per matched incident = matching detections / labels matched (1.0 when every incident is reported
once). Detections are deduplicated on ``anomaly_id`` first (replays re-emit the same id; an incident's updates
share its id, the widest window counts). Records that cannot
be decoded are counted per topic in ``undecodable``.

``python -m services.anomaly_detector.score [--labels TOPIC] [--anomalies TOPIC]`` prints the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from services.anomaly_detector.settings import ANOMALIES, LABELS
from services.common.kafka import read_topic
from services.common.serde import AvroSerde, SerdeError, registry_client
from services.common.settings import SchemaRegistrySettings


def _ms(value: Any) -> int:
    return value if isinstance(value, int) else int(value.timestamp() * 1000)


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int, tolerance_ms: int = 0) -> bool:
    return a_start < b_end + tolerance_ms and b_start < a_end + tolerance_ms


def match(
    labels: Iterable[Mapping[str, Any]], detections: Iterable[Mapping[str, Any]], tolerance_ms: int = 60_000
) -> dict[str, dict[str, Any]]:
    """Precision and recall per anomaly type (pure: records as decoded dicts)."""
    unique: dict[str, Mapping[str, Any]] = {}
    for detection in detections:  # an incident's updates share its id and only grow: keep the widest
        key = str(detection["anomaly_id"])
        seen = unique.get(key)
        if seen is None or _ms(detection["window_end"]) > _ms(seen["window_end"]):
            unique[key] = detection
    label_list = list(labels)
    by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for label in label_list:
        by_key.setdefault((str(label["anomaly_type"]), str(label["entity_key"])), []).append(label)
    types = sorted({str(x["anomaly_type"]) for x in label_list} | {str(d["anomaly_type"]) for d in unique.values()})
    result: dict[str, dict[str, Any]] = {
        t: {"labels": 0, "detections": 0, "true_detections": 0, "labels_found": 0} for t in types
    }
    found_labels: set[int] = set()
    for detection in unique.values():
        kind = str(detection["anomaly_type"])
        result[kind]["detections"] += 1
        start, end = _ms(detection["window_start"]), _ms(detection["window_end"])
        hit = False
        for label in by_key.get((kind, str(detection["entity_key"])), []):
            if overlaps(start, end, _ms(label["start_time"]), _ms(label["end_time"]), tolerance_ms):
                found_labels.add(id(label))
                hit = True
        if hit:
            result[kind]["true_detections"] += 1
    for label in label_list:
        kind = str(label["anomaly_type"])
        result[kind]["labels"] += 1
        if id(label) in found_labels:
            result[kind]["labels_found"] += 1
    for item in result.values():
        item["precision"] = item["true_detections"] / item["detections"] if item["detections"] else None
        item["recall"] = item["labels_found"] / item["labels"] if item["labels"] else None
        found = item["labels_found"]
        item["detections_per_incident"] = item["true_detections"] / found if found else None
    return result


def _decoded(
    env: Mapping[str, str], topic: str, serde: AvroSerde, start: Mapping[int, int] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The decoded records of ``topic`` and how many could not be decoded (reported, not hidden)."""
    records, undecodable = [], 0
    for _key, value, _ts in read_topic(env, topic, start=start):
        try:
            records.append(serde.decode(value))
        except SerdeError:
            undecodable += 1
    return records, undecodable


def score(
    env: Mapping[str, str],
    labels_topic: str = LABELS,
    anomalies_topic: str = ANOMALIES,
    tolerance_ms: int = 60_000,
    start: Mapping[str, Mapping[int, int]] | None = None,
) -> dict[str, Any]:
    """Read both topics (up to their current ends, from ``start`` per topic and partition when given) and score;
    ``env`` holds SCHEMA_REGISTRY_URL and KAFKA_*."""
    registry = SchemaRegistrySettings.from_mapping(env)
    serde = AvroSerde(registry_client(registry))
    labels, bad_labels = _decoded(env, labels_topic, serde, (start or {}).get(labels_topic))
    detections, bad_detections = _decoded(env, anomalies_topic, serde, (start or {}).get(anomalies_topic))
    per_type = match(labels, detections, tolerance_ms)
    return {
        "labels": len(labels),
        "detections": len({str(d["anomaly_id"]) for d in detections}),
        "undecodable": {labels_topic: bad_labels, anomalies_topic: bad_detections},
        "per_type": per_type,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.anomaly_detector.score", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--labels", default=LABELS, help="labels topic (default %(default)s)")
    parser.add_argument("--anomalies", default=ANOMALIES, help="anomalies topic (default %(default)s)")
    parser.add_argument("--tolerance-ms", type=int, default=60_000)
    args = parser.parse_args(argv)
    result = score(dict(os.environ), args.labels, args.anomalies, args.tolerance_ms)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
