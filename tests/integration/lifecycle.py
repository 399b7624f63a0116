"""Lifecycle of a service process under test: stop it (SIGTERM) or crash it (SIGKILL) while a batch is in flight,
restart it, and read back where its consumer group committed and what reached its output.

A ``ServiceCase`` describes one service on private topics: the module to run, its env, its consumer group and
input topic, and how to list the ids of what it wrote. The lifecycle tests run every service through the same
functions here, so each promise (graceful drain, dead letters after a crash) is checked once for all of them.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka import Producer as RawProducer

from tests.integration.sinks.helpers import SinkProcess, dead_letters, decode_dead_letter, free_port, wait_for

SHUTDOWN_TIMEOUT_S = 20
HANG_GUARD_S = SHUTDOWN_TIMEOUT_S + 40  # the wait for an exit is a guard against a hang, not a timed assertion


@dataclass
class ServiceCase:
    """One service on its own topics: ``landed`` lists the ids at its output (one entry per output record)."""

    module: str
    env: dict[str, str]
    group: str
    topic: str
    landed: Callable[[], list[str]]
    log: Path

    def start(self) -> SinkProcess:
        """Start the service and wait until its ``/readyz`` answers 200: its SIGTERM handler is installed then."""
        port = free_port()
        env = {**self.env, "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S), "METRICS_PORT": str(port)}
        process = SinkProcess(self.module, env, self.log).start()

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
            assert process.process is not None
            process.process.kill()
            process.process.wait(30)
            raise
        return process


def group_progress(env: dict[str, str], group: str, topic: str) -> tuple[int, int]:
    """(records of ``topic`` the group committed, records in ``topic``), read without joining the group."""
    consumer = Consumer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        done = total = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=30)
            done += (tp.offset if tp.offset >= 0 else low) - low
            total += high - low
        return done, total
    finally:
        consumer.close()


def committed_offset(env: dict[str, str], group: str, topic: str, partition: int) -> int:
    """The group's committed position on one partition (-1: none)."""
    consumer = Consumer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
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
    case: ServiceCase, sig: signal.Signals, ready: Callable[[], bool] | None = None, what: str = "first outputs"
) -> Interruption:
    """Start the service, wait for ``ready`` (default: some output while records are still uncommitted), send
    ``sig`` and wait for the exit; the lag at the signal tells whether it hit work in flight."""
    process = case.start()
    lag = 0
    try:

        def in_flight() -> bool:
            nonlocal lag
            if not process.alive():
                raise AssertionError(f"{case.module} exited early:\n{process.log()}")
            if not (ready() if ready is not None else len(case.landed()) > 0):
                return False
            done, total = group_progress(case.env, case.group, case.topic)
            lag = total - done
            if ready is None and lag == 0:
                raise AssertionError(f"{case.module} drained its input before the signal: give it more records")
            return True

        wait_for(in_flight, 180, interval=0.1, what=what)
        assert process.process is not None
        process.process.send_signal(sig)  # at once: the lag just read is the lag at the signal
        returncode = process.process.wait(HANG_GUARD_S)
    finally:
        if process.alive():
            assert process.process is not None
            process.process.kill()
            process.process.wait(30)
    committed, _total = group_progress(case.env, case.group, case.topic)
    return Interruption(lag, returncode, committed, case.landed())


def run_to_end(case: ServiceCase, expected: int) -> list[str]:
    """Restart the service, wait until it committed every input record and ``expected`` outputs landed, stop it
    with SIGTERM (exit 0) and return the output ids."""
    process = case.start()
    try:

        def done() -> bool:
            if not process.alive():
                raise AssertionError(f"{case.module} exited early:\n{process.log()}")
            committed, total = group_progress(case.env, case.group, case.topic)
            return committed == total and len(case.landed()) >= expected

        wait_for(done, 240, what="every record processed and committed")
        assert process.stop(HANG_GUARD_S) == 0, process.log()
    finally:
        if process.alive():
            assert process.process is not None
            process.process.kill()
            process.process.wait(30)
    return case.landed()


@dataclass
class Poison:
    key: bytes
    value: bytes
    partition: int
    offset: int


def produce_poison(env: dict[str, str], topic: str) -> Poison:
    """One record no service can decode (random bytes that are not the Avro wire format), at a known offset."""
    key = f"poison-{uuid.uuid4().hex}".encode()
    value = b"\x01" + os.urandom(40)  # magic byte 1: not Confluent wire format
    producer = RawProducer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True})
    delivered: list[Message] = []
    producer.produce(topic, value, key, on_delivery=lambda error, message: delivered.append(message))
    assert producer.flush(60) == 0 and delivered and delivered[0].error() is None
    return Poison(key, value, int(delivered[0].partition() or 0), int(delivered[0].offset() or 0))


@dataclass
class DeadLetterReport:
    """The dead letters of a crashed and restarted run, and the output ids once everything was processed."""

    envelopes: list[dict[str, Any]]
    keys: list[bytes | None]
    duplicates: int
    committed_past_poison_at_kill: bool
    landed: list[str]
    started_ms: int


def crash_after_poison(case: ServiceCase, poison: Poison, expected: int) -> DeadLetterReport:
    """Start the service, SIGKILL it once the poison's dead letter is on ``<topic>.dlq`` (its batch possibly not
    committed yet), restart it until every record is processed, and read the dead letters back."""
    started_ms = int(time.time() * 1000)

    def dead_lettered() -> bool:
        return len(dead_letters(case.env, case.topic, 1, timeout=1.0)) > 0

    interrupt_in_flight(case, signal.SIGKILL, ready=dead_lettered, what="the poison's dead letter")
    committed_past = committed_offset(case.env, case.group, case.topic, poison.partition) > poison.offset
    landed = run_to_end(case, expected)
    messages = dead_letters(case.env, case.topic, 1)
    envelopes = [decode_dead_letter(case.env, m.value()) for m in messages]
    sources = Counter((e["source_topic"], e["source_partition"], e["source_offset"]) for e in envelopes)
    duplicates = sum(sources.values()) - len(sources)
    return DeadLetterReport(envelopes, [m.key() for m in messages], duplicates, committed_past, landed, started_ms)


def check_envelope(report: DeadLetterReport, poison: Poison, topic: str, service: str) -> None:
    """Each dead letter carries the poison untouched, where it came from, a non-empty error, the service and a
    time within the run; all of them are the poison (a duplicate is the same record again)."""
    assert report.envelopes, "no dead letter"
    for envelope, key in zip(report.envelopes, report.keys, strict=True):
        assert key == poison.key
        assert envelope["original_key"] == poison.key
        assert envelope["original_value"] == poison.value
        source = (envelope["source_topic"], envelope["source_partition"], envelope["source_offset"])
        assert source == (topic, poison.partition, poison.offset)
        assert envelope["error_type"] and envelope["error_message"]
        assert envelope["service"] == service
        failed_at = envelope["failed_at"]  # timestamp-millis: decoded as an aware datetime
        assert report.started_ms <= failed_at.timestamp() * 1000 <= time.time() * 1000
