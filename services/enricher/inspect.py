"""Read enriched topics back: counts, duplicates, UNKNOWN references and event-time-to-enriched latency.

``summary(env, topics)`` is what the pipeline report calls after the enricher caught up; ``python -m
services.enricher.inspect [TOPIC ...]`` prints it as JSON. The latency of a record is its ``metadata.ingest_time``
(when the enricher built it) minus its ``metadata.event_time``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from services.common.kafka import read_topic
from services.common.serde import AvroSerde, SerdeError, registry_client
from services.common.settings import SchemaRegistrySettings
from services.enricher import join
from services.enricher.settings import OUTPUT_TOPICS

REFERENCE_FIELDS = {
    "product": join.PRODUCT,
    "customer": join.CUSTOMER,
    "store": join.STORE,
    "warehouse": join.WAREHOUSE,
}


def _registry(env: Mapping[str, str]) -> SchemaRegistrySettings:
    return SchemaRegistrySettings.from_mapping(env)


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def topic_summary(
    env: Mapping[str, str], topic: str, serde: AvroSerde, start: Mapping[int, int] | None = None
) -> dict[str, Any]:
    records = 0
    ids: Counter[str] = Counter()
    source_ids: set[str] = set()
    unknown: Counter[str] = Counter()
    undecodable = 0
    latencies: list[float] = []
    for _key, value, _timestamp in read_topic(env, topic, start=start):
        records += 1
        try:
            record = serde.decode(value)
        except SerdeError:
            undecodable += 1
            continue
        metadata = record["metadata"]
        ids[str(metadata["event_id"])] += 1
        source_ids.add(str(record["event"]["metadata"]["event_id"]))
        latencies.append((join._millis(metadata["ingest_time"]) - join._millis(metadata["event_time"])) / 1000.0)
        for field, kind in REFERENCE_FIELDS.items():
            attributes = record.get(field)
            if attributes is not None and attributes["status"] == join.UNKNOWN:
                unknown[kind] += 1
        for attributes in record.get("products") or []:
            if attributes["status"] == join.UNKNOWN:
                unknown[join.PRODUCT] += 1
    return {
        "records": records,
        "distinct_events": len(source_ids),
        "duplicates": records - undecodable - len(ids),
        "undecodable": undecodable,
        "unknown_references": dict(sorted(unknown.items())),
        "latency_p50_s": _percentile(latencies, 0.5),
        "latency_p99_s": _percentile(latencies, 0.99),
        "_latencies": latencies,
    }


def summary(
    env: Mapping[str, str],
    topics: Sequence[str] | None = None,
    start: Mapping[str, Mapping[int, int]] | None = None,
) -> dict[str, Any]:
    """Per enriched topic: records, distinct source events, duplicates, UNKNOWN references, latency p50/p99
    (of the records after ``start``, per topic and partition, when given)."""
    serde = AvroSerde(registry_client(_registry(env)))
    names = list(topics) if topics else list(OUTPUT_TOPICS.values())
    per_topic = {topic: topic_summary(env, topic, serde, (start or {}).get(topic)) for topic in names}
    unknown: Counter[str] = Counter()
    latencies: list[float] = []
    for item in per_topic.values():
        unknown.update(item["unknown_references"])
        latencies.extend(item.pop("_latencies"))
    return {
        "topics": per_topic,
        "records": sum(item["records"] for item in per_topic.values()),
        "duplicates": sum(item["duplicates"] for item in per_topic.values()),
        "unknown_references": dict(sorted(unknown.items())),
        "latency_p50_s": _percentile(latencies, 0.5),
        "latency_p99_s": _percentile(latencies, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.enricher.inspect", description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="*", help="enriched topics (default: the catalogue's enriched.*.v1)")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(summary(dict(os.environ), args.topics), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
