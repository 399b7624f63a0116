"""What the detector tests and bench share: starting the service, the raw events stage 1 forwards, and the records
it forwarded, both named by the raw event's position (catalogue topic, partition, offset)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.anomaly_detector.topology import detector_input
from services.common.serde import AvroSerde, SerdeError
from tests.integration.enricher import support


@dataclass(frozen=True)
class Forwardable:
    """A raw event stage 1 forwards: where it is (the prefixed topic) and its identity on the repartition topic."""

    topic: str
    partition: int
    offset: int
    identity: str


def start_detector(stack_env: Mapping[str, str], log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """``python -m services.anomaly_detector`` with ``ANOMALY_DETECTOR_<name>`` settings, its output to ``log``."""
    env = support.process_env(stack_env, **{f"ANOMALY_DETECTOR_{name}": value for name, value in settings.items()})
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.anomaly_detector"], env=env, cwd=support.ROOT, stdout=out, stderr=out
        )


def identity(record: Mapping[str, Any]) -> str:
    return f"{record['source_topic']}/{record['source_partition']}/{record['source_offset']}"


def forwardable(stack_env: Mapping[str, str], settings: DetectorSettings, serde: AvroSerde) -> list[Forwardable]:
    """Every raw event stage 1 forwards (those its detectors use; records that do not decode are left out)."""
    found = []
    for name in INPUT_TOPICS:
        topic = settings.topic(name)
        for partition, offset, value in raw_records(stack_env, topic):
            try:
                event = serde.decode(value)
            except SerdeError:
                continue
            record = detector_input(name, event, partition, offset)
            if record is not None:
                found.append(Forwardable(topic, partition, offset, identity(record)))
    return found


def forwarded(stack_env: Mapping[str, str], settings: DetectorSettings, serde: AvroSerde) -> list[str]:
    """The identity of every record on the repartition topic (one entry per record)."""
    return [identity(r) for r in support.decoded(stack_env, settings.topic(DETECTOR_INPUT), serde)]


def raw_records(stack_env: Mapping[str, str], topic: str) -> Iterator[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record of ``topic``."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": "raw-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in partitions}
        open_ = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in open_])
        while open_:
            message = consumer.poll(10)
            assert message is not None, f"{topic}: no record within 10s"
            if message.error() is not None:
                open_.discard(message.partition() or 0)
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            yield partition, offset, message.value() or b""
            if offset + 1 >= ends[partition][1]:
                open_.discard(partition)
    finally:
        consumer.close()
