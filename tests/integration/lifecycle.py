"""Lifecycle of a service process under test: stop it (SIGTERM) or crash it (SIGKILL) while a batch is in flight,
restart it, and read back where its consumer group committed and what reached its output.

A ``ServiceCase`` describes one service on private topics: the module to run, its env, its consumer group and
input topics (on the local or the remote cluster), the groups of a further stage, and how to list the ids of what
it wrote. The lifecycle tests of the sinks, the mirror, the enricher and the detector run through the same
functions here, so each promise (graceful drain, dead letters after a crash) is checked the same way for all of
them; what a restarted process consumed comes from its own ``freightline_records_consumed_total``.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka import Producer as RawProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.processes import (
    ServiceProcess,
    dead_letters,
    decode_dead_letter,
    free_port,
    topic_size,
    wait_for,
    watermarks,
)

SHUTDOWN_TIMEOUT_S = 20
HANG_GUARD_S = SHUTDOWN_TIMEOUT_S + 40  # the wait for an exit is a guard against a hang, not a timed assertion


@dataclass
class ServiceCase:
    """One service on its own topics: its consumer ``group`` reads ``topics`` on the cluster ``source`` (client
    configuration; default: the local cluster of ``env``), ``landed`` lists the ids at its output (one entry per
    output record)."""

    module: str
    env: dict[str, str]
    group: str
    topics: Sequence[str]
    landed: Callable[[], list[str]]
    log: Path
    source: Mapping[str, Any] | None = None
    stages: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Further consumer groups of the same process on the local cluster (a second stage) and their topics."""
    started: Callable[[], bool] | None = None
    """A cheap check that some output landed (default: ``landed`` is not empty)."""

    @property
    def source_config(self) -> dict[str, Any]:
        return dict(self.source or {"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"]})

    def progress(self) -> tuple[int, int]:
        """(input records the group committed, input records)."""
        return group_progress(self.source_config, self.group, self.topics)

    def drained(self) -> bool:
        """Every input record committed, by the input group and by each further stage."""
        local = {"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"]}
        groups = [(self.source_config, self.group, self.topics)]
        groups += [(local, group, topics) for group, topics in self.stages.items()]
        for config, group, topics in groups:
            done, total = group_progress(config, group, topics)
            if done != total:
                return False
        return True

    def start(self) -> Running:
        """Start the service and wait until its ``/readyz`` answers 200: its SIGTERM handler is installed then."""
        port = free_port()
        env = {**self.env, "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S), "METRICS_PORT": str(port)}
        process = Running(self.module, env, self.log, port=port).start()

        def ready() -> bool:
            if not process.alive():
                raise AssertionError(f"{self.module} exited early:\n{process.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    return int(answer.status) == 200
            except OSError:
                return False

        try:
            wait_for(ready, 120, interval=0.2, what=f"{self.module} ready")
        except BaseException:
            process.ensure_ended()
            raise
        return process


class Running(ServiceProcess):
    """A service process whose metrics are served on ``port``."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, *, port: int) -> None:
        super().__init__(module, env, log_path)
        self.port = port

    def consumed(self) -> Counter[str]:
        """Records this process consumed and finished (processed or dead-lettered, retries not counted), by topic:
        ``freightline_records_consumed_total`` from its ``/metrics``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        counts: Counter[str] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "freightline_records_consumed_total" and sample.labels["outcome"] != "retried":
                    counts[sample.labels["topic"]] += int(sample.value)
        return counts


def group_progress(config: Mapping[str, Any], group: str, topics: Sequence[str]) -> tuple[int, int]:
    """(records of ``topics`` the group committed, records in ``topics``), read without joining the group."""
    consumer = Consumer({**config, "group.id": group})
    try:
        done = total = 0
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
            for tp in committed:
                low, high = watermarks(consumer, tp)
                done += (tp.offset if tp.offset >= 0 else low) - low
                total += high - low
        return done, total
    finally:
        consumer.close()


def committed_offset(config: Mapping[str, Any], group: str, topic: str, partition: int) -> int:
    """The group's committed position on one partition (-1: none)."""
    consumer = Consumer({**config, "group.id": group})
    try:
        return int(consumer.committed([TopicPartition(topic, partition)], timeout=30)[0].offset)
    finally:
        consumer.close()


@dataclass
class Interruption:
    """What an interrupted run left: the lag when the signal was sent, the exit code, the committed count and
    the output ids at exit."""

    lag_at_signal: int
    returncode: int
    committed: int
    landed: list[str]


def interrupt_in_flight(
    case: ServiceCase,
    sig: signal.Signals,
    ready: Callable[[], bool] | None = None,
    what: str = "first outputs",
    require_lag: bool = True,
) -> Interruption:
    """Start the service, wait for ``ready`` (default: some output landed), read the input lag and send ``sig`` at
    once, then wait for the exit; the lag at the signal tells whether it hit work in flight. With ``require_lag``
    a service that drained its input before the signal fails the test at once."""
    process = case.start()
    lag = 0
    if ready is None:
        ready = case.started or (lambda: len(case.landed()) > 0)
    try:

        def in_flight() -> bool:
            nonlocal lag
            if not process.alive():
                raise AssertionError(f"{case.module} exited early:\n{process.log()}")
            if not ready():
                return False
            done, total = case.progress()
            lag = total - done
            if require_lag and lag == 0:
                raise AssertionError(f"{case.module} drained its input before the signal: give it more records")
            return True

        wait_for(in_flight, 180, interval=0.1, what=what)
        assert process.process is not None
        process.process.send_signal(sig)  # at once: the lag just read is the lag at the signal
        returncode = process.process.wait(HANG_GUARD_S)
    finally:
        process.ensure_ended()
    committed, _total = case.progress()
    return Interruption(lag, returncode, committed, case.landed())


@dataclass
class Finished:
    """A run to the end: the output ids, and what the run itself consumed per topic (from its metrics)."""

    landed: list[str]
    consumed: Counter[str]


def run_to_end(case: ServiceCase, expected: int) -> Finished:
    """Restart the service, wait until it committed every input record (every stage) and ``expected`` outputs
    landed, read what it consumed, stop it with SIGTERM (exit 0) and return the output ids."""
    process = case.start()
    try:

        def done() -> bool:
            if not process.alive():
                raise AssertionError(f"{case.module} exited early:\n{process.log()}")
            return case.drained() and len(case.landed()) >= expected

        wait_for(done, 240, what="every record processed and committed")
        consumed = process.consumed()
        assert process.stop(HANG_GUARD_S) == 0, process.log()
    finally:
        process.ensure_ended()
    return Finished(case.landed(), consumed)


@dataclass
class Poison:
    topic: str
    key: bytes
    value: bytes
    partition: int
    offset: int


def produce_poison(config: Mapping[str, Any], topic: str, value: bytes | None = None) -> Poison:
    """One record no service can decode (default: random bytes that are not the Avro wire format) on the cluster
    of client configuration ``config``, at a known offset."""
    key = f"poison-{uuid.uuid4().hex}".encode()
    if value is None:
        value = b"\x01" + os.urandom(40)  # magic byte 1: not Confluent wire format
    producer = RawProducer({**config, "enable.idempotence": True})
    delivered: list[Message] = []
    producer.produce(topic, value, key, on_delivery=lambda error, message: delivered.append(message))
    assert producer.flush(60) == 0 and delivered and delivered[0].error() is None
    return Poison(topic, key, value, int(delivered[0].partition() or 0), int(delivered[0].offset() or 0))


@dataclass
class DeadLetterReport:
    """The dead letters of a crashed and restarted run, the output ids once everything was processed, and the
    input lag at the kill (what an at-least-once service may process twice)."""

    envelopes: list[dict[str, Any]]
    keys: list[bytes | None]
    duplicates: int
    committed_past_poison_at_kill: bool
    landed: list[str]
    started_ms: int
    lag_at_kill: int


def crash_after_poison(case: ServiceCase, poison: Poison, expected: int) -> DeadLetterReport:
    """Start the service, SIGKILL it once the poison's dead letter is on ``<topic>.dlq`` of the local cluster (its
    batch possibly not committed yet), restart it until every record is processed, and read the dead letters
    back."""
    started_ms = int(time.time() * 1000)

    local = {"bootstrap.servers": case.env["KAFKA_BOOTSTRAP_SERVERS"]}

    def dead_lettered() -> bool:
        return topic_size(local, f"{poison.topic}.dlq") > 0  # watermarks only: the kill follows at once

    killed = interrupt_in_flight(case, signal.SIGKILL, dead_lettered, "the poison's dead letter", require_lag=False)
    position = committed_offset(case.source_config, case.group, poison.topic, poison.partition)
    landed = run_to_end(case, expected).landed
    messages = dead_letters(case.env, poison.topic, 1)
    envelopes = [decode_dead_letter(case.env, m.value()) for m in messages]
    sources = Counter((e["source_topic"], e["source_partition"], e["source_offset"]) for e in envelopes)
    duplicates = sum(sources.values()) - len(sources)
    committed_past = position > poison.offset
    return DeadLetterReport(
        envelopes, [m.key() for m in messages], duplicates, committed_past, landed, started_ms, killed.lag_at_signal
    )


def check_envelope(report: DeadLetterReport, poison: Poison, service: str) -> None:
    """Each dead letter carries the poison untouched, where it came from, a non-empty error, the service and a
    time within the run; all of them are the poison (a duplicate is the same record again)."""
    assert report.envelopes, "no dead letter"
    for envelope, key in zip(report.envelopes, report.keys, strict=True):
        assert key == poison.key, key
        assert (envelope["original_key"], envelope["original_value"]) == (poison.key, poison.value), envelope
        source = (envelope["source_topic"], envelope["source_partition"], envelope["source_offset"])
        assert source == (poison.topic, poison.partition, poison.offset), source
        assert envelope["error_type"] and envelope["error_message"], envelope
        assert envelope["service"] == service, envelope["service"]
        failed_at = envelope["failed_at"]  # timestamp-millis: decoded as an aware datetime
        assert report.started_ms <= failed_at.timestamp() * 1000 <= time.time() * 1000, failed_at


def check_dead_letters(report: DeadLetterReport, poison: Poison, service: str) -> None:
    """The dead letters are the poison's (``check_envelope``); a duplicate is reported, with the counts, as a
    warning (not a failure: the services are at least once) and bounded: a dead letter is published once per
    process, so only the replay of the poison's batch, not committed at the kill, can repeat it."""
    counts = f"{len(report.envelopes)} dead letter(s), {report.duplicates} duplicate(s)"
    if report.duplicates:
        warnings.warn(
            f"{service}: {counts} (a batch replayed after the kill publishes its dead letters again)", stacklevel=2
        )
    check_envelope(report, poison, service)
    assert report.duplicates <= (0 if report.committed_past_poison_at_kill else 1), counts
