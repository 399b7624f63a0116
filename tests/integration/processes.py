"""What every integration test of a service process needs: a free port, a wait with a hang guard, the service run
as ``python -m services.<module>`` with a log file, a topic read back or sized, and the dead letters it left on
``<topic>.dlq``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from deploy.local.context import REPO_ROOT
from deploy.processes import free_port as free_port
from services.common.serde import AvroSerde, registry_client
from services.common.settings import SchemaRegistrySettings


def wait_for(predicate: Callable[[], bool], timeout: float = 120.0, interval: float = 0.5, what: str = "") -> None:
    """Poll ``predicate`` until it holds; ``timeout`` is a guard against a hang, never a timed assertion."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or predicate}")
        time.sleep(interval)


class ServiceProcess:
    """``python -m services.<module> [args]`` with the stack's env plus overrides; output kept in a log file."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.module = module
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.module}", *self.args],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=log,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def ensure_ended(self) -> None:
        """SIGKILL the process if it still runs (cleanup after a failed test: nothing is left behind)."""
        if self.alive():
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@contextmanager
def service_process(module: str, env: dict[str, str], log_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(module, env, log_path).start()
    try:
        yield process
    finally:
        process.ensure_ended()


def read_topic(config: dict[str, Any], topic: str, timeout: float = 60.0) -> list[Message]:
    """Every committed record of ``topic`` up to its current end, partition by partition in offset order."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        ends: dict[int, int] = {}
        assignment = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        messages: list[Message] = []
        positions = {tp.partition: tp.offset for tp in assignment}
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: at {positions}, want {ends}")
            for message in consumer.consume(10_000, 1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # past the markers that end a transactional log
                        partition = message.partition() or 0
                        positions[partition] = max(positions[partition], message.offset() or 0)
                    continue
                messages.append(message)
                positions[message.partition() or 0] = (message.offset() or 0) + 1
        messages.sort(key=lambda m: (m.partition(), m.offset()))
        return messages
    finally:
        consumer.close()


def watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """(low, high) watermark of ``partition``, waiting out a partition just created that has no leader yet."""
    attempts = 20
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return int(low), int(high)
        except KafkaException:
            attempts -= 1
            if attempts == 0:
                raise
            time.sleep(0.25)


def topic_size(config: dict[str, Any], topic: str) -> int:
    """Records currently in ``topic`` (sum of high minus low watermarks); 0 when it does not exist."""
    consumer = Consumer({**config, "group.id": f"size-{uuid.uuid4().hex}"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return 0
        total = 0
        for partition in metadata.partitions:
            low, high = watermarks(consumer, TopicPartition(topic, partition))
            total += high - low
        return total
    finally:
        consumer.close()


def dead_letters(env: dict[str, str], topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Everything on ``<topic>.dlq`` of the local cluster (reads until ``expected`` arrived and then a quiet
    second)."""
    consumer = Consumer(
        {
            "bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([f"{topic}.dlq"])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
                continue
            if len(found) >= expected:
                quiet_until = quiet_until or time.monotonic() + 2
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return found


def decode_dead_letter(env: dict[str, str], value: bytes) -> dict[str, Any]:
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    return serde.decode(value)
