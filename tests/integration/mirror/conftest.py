"""Fixtures of the mirror tests: a registry, source records with sequence numbers, a mirror process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from confluent_kafka import Producer as RawProducer

from services.common.kafka import ensure_topics
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from tests.integration.registry import free_port, stack_or_private_registry

SEQUENCE_SCHEMA = {
    "type": "record",
    "name": "MirrorSequence",
    "namespace": "com.freightline.test",
    "fields": [
        {"name": "partition", "type": "int"},
        {"name": "n", "type": "long"},
        {"name": "pad", "type": "string"},
    ],
}


@pytest.fixture(scope="session")
def mirror_registry_url(stack_env: dict[str, str]) -> Iterator[str]:
    with stack_or_private_registry(stack_env) as url:
        yield url


def remote_config(env: dict[str, str]) -> dict[str, Any]:
    return {
        "bootstrap.servers": env["REMOTE_KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": env["REMOTE_KAFKA_SASL_USERNAME"],
        "sasl.password": env["REMOTE_KAFKA_SASL_PASSWORD"],
    }


def produce_sequence(
    config: dict[str, Any],
    registry_url: str,
    topic: str,
    *,
    partitions: int,
    count: int,
    start: int = 0,
    topic_configs: dict[str, str] | None = None,
) -> None:
    """``count`` Avro records per round-robin partition, keyed, with headers and explicit timestamps."""
    ensure_topics(KafkaSettings.from_client_config(config), [(topic, partitions, topic_configs or {})])
    encoder = AvroSerde(registry_client(SchemaRegistrySettings(url=registry_url))).encoder(
        subject_for(topic), SEQUENCE_SCHEMA
    )
    producer = RawProducer({**config, "enable.idempotence": True, "linger.ms": 20})
    base_ms = int(time.time() * 1000) - 3_600_000  # recent: retention must not delete the records
    for n in range(start, start + count):
        partition = n % partitions
        value = encoder.encode({"partition": partition, "n": n, "pad": "x" * 40})
        headers: list[tuple[str, str | bytes | None]] = [("seq", str(n).encode())]
        if n % 3:
            headers.append(("empty", None))
        while True:
            try:
                producer.produce(topic, value, f"k{n}", partition=partition, headers=headers, timestamp=base_ms + n)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0


def sequence_id(message: Any) -> str:
    """A mirrored record's identity: its ``seq`` header (unique per produced record)."""
    return str(dict(message.headers() or [])["seq"].decode())


def mirror_settings(source: str, destination: str, group: str, **extra: str) -> dict[str, str]:
    """The mirror's settings to copy ``source`` (remote) to ``destination`` (local) in consumer group ``group``."""
    return {
        "MIRROR_TOPICS": source,
        "MIRROR_RENAME": f'{{"{source}": "{destination}"}}',
        "MIRROR_GROUP_ID": group,
        **extra,
    }


@dataclass
class CopyReport:
    source: int
    destination: int
    lost: int
    duplicates: int
    in_order: bool


def compare(source: list[Message], destination: list[Message], *, body_only: bool = False) -> CopyReport:
    """Per partition: every source record present, in order once duplicates (replays) are dropped."""

    def identity(message: Message) -> tuple[Any, ...]:
        value = message.value() or b""
        return (
            message.partition(),
            message.key(),
            value[5:] if body_only else value,
            tuple(message.headers() or []),
            message.timestamp()[1],
        )

    lost = duplicates = 0
    in_order = True
    partitions = {m.partition() for m in source} | {m.partition() for m in destination}
    for partition in partitions:
        wanted = [identity(m) for m in source if m.partition() == partition]
        got = [identity(m) for m in destination if m.partition() == partition]
        seen: set[tuple[Any, ...]] = set()
        firsts = []
        for item in got:
            if item in seen:
                duplicates += 1
            else:
                seen.add(item)
                firsts.append(item)
        wanted_set = set(wanted)
        lost += len(wanted_set - seen)
        in_order = in_order and [i for i in firsts if i in wanted_set] == wanted
    return CopyReport(len(source), len(destination), lost, duplicates, in_order)


@dataclass
class MirrorProcess:
    env: dict[str, str]
    log: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> MirrorProcess:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.mirror"], env=self.env, stdout=handle, stderr=handle
        )
        handle.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"


@pytest.fixture
def mirror_process(tmp_path: Path) -> Iterator[Callable[..., MirrorProcess]]:
    started: list[MirrorProcess] = []

    def make(env: dict[str, str], **settings: str) -> MirrorProcess:
        port = free_port()
        full = {**os.environ, **env, "METRICS_PORT": str(port), "LOG_LEVEL": "INFO", **settings}
        mirror = MirrorProcess(full, tmp_path / f"mirror-{len(started)}.log", port)
        started.append(mirror)
        return mirror

    yield make
    for mirror in started:
        if mirror.alive():
            mirror.kill()


@dataclass(frozen=True)
class MirrorTopics:
    """A test's own source topic (remote), destination topic (local) and consumer group, and the remote's client
    configuration."""

    source: str
    destination: str
    group: str
    remote: dict[str, Any]


@pytest.fixture
def mirror_topics(stack_env: dict[str, str], unique_name: Callable[[str], str]) -> MirrorTopics:
    return MirrorTopics(unique_name("src"), unique_name("dst"), unique_name("grp"), remote_config(stack_env))
