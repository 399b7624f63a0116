"""Services of the main job, run as separate processes exactly as they are deployed (``python -m services.X``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from deploy.local.context import REPO_ROOT


class ServiceProcess:
    """One service process with the stack's environment; output goes to a log file."""

    def __init__(self, module: str, env: Mapping[str, str], log: Path, *args: str, **overrides: str) -> None:
        self.module = module
        self.args = list(args)
        self.env = {**os.environ, **env, "METRICS_PORT": "0", "SERVICE_NAME": module.rsplit(".", 1)[-1], **overrides}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=handle,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> tuple[int, str]:
        """Wait for a bounded run to finish; returns its exit code and standard output."""
        assert self.process is not None
        stdout, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, stdout.decode(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (drain, flush, commit), then SIGKILL after ``timeout``."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return int(self.process.returncode)


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    raise ValueError(f"no JSON summary line in output: {text[-500:]!r}")


# A fresh cluster answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS while it creates its offsets topic.
_retry_kafka = retry(
    retry=retry_if_exception_type(KafkaException),
    wait=wait_exponential(multiplier=0.2, max=2),
    stop=stop_after_delay(60),
    reraise=True,
)


@_retry_kafka
def end_offsets(client_config: Mapping[str, Any], topics: list[str]) -> dict[str, int]:
    """Sum of high watermarks per topic (0 for a topic that does not exist)."""
    consumer = Consumer({**client_config, "group.id": "freightline-inspector", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=15)
        totals: dict[str, int] = {}
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                totals[topic] = 0
                continue
            totals[topic] = sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in described.partitions
            )
        return totals
    finally:
        consumer.close()


@_retry_kafka
def group_lag(client_config: Mapping[str, Any], group: str, topics: list[str]) -> int:
    """Records of ``topics`` not yet committed by consumer group ``group``."""
    admin = AdminClient(dict(client_config))
    metadata = admin.list_topics(timeout=15)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics and metadata.topics[topic].error is None
        for p in metadata.topics[topic].partitions
    ]
    if not partitions:
        return 0
    consumer = Consumer({**client_config, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed(partitions, timeout=15)
        lag = 0
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=15)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
