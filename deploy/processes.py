"""Services of the main job, run as separate processes exactly as they are deployed (``python -m services.X``)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from deploy.local.context import REPO_ROOT
from services.common.settings import KafkaSettings, RemoteKafkaSettings


class ServiceProcess:
    """One service process with the stack's environment; output goes to a log file."""

    def __init__(self, module: str, env: Mapping[str, str], log: Path, *args: str, **overrides: str) -> None:
        self.module = module
        self.args = list(args)
        self.env = {**os.environ, **env, "METRICS_PORT": "0", "SERVICE_NAME": module.rsplit(".", 1)[-1], **overrides}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, capture_stdout: bool = False) -> ServiceProcess:
        """Start the process; standard output goes to the log unless a bounded run's ``wait`` will read it."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE if capture_stdout else handle,
                stderr=handle,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> tuple[int, str]:
        """Wait for a bounded run to finish; returns its exit code and standard output."""
        assert self.process is not None
        stdout, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, (stdout or b"").decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL (nothing drained, flushed or committed) and wait for the process to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

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


def without_credentials(url: str) -> str:
    """``url`` without the user info it may carry (the stack's registry URL names its admin)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def read_only_registry(env: Mapping[str, str]) -> dict[str, str]:
    """The registry settings of a service that only reads schemas, from the stack's endpoints ``env``: the registry's
    read-only user (``SCHEMA_REGISTRY_READ_ONLY_USER_INFO``) instead of the admin the stack's URL carries, and no
    auto-registration (a deploy step registered every catalogue subject first); empty when ``env`` names none."""
    reader = env.get("SCHEMA_REGISTRY_READ_ONLY_USER_INFO")
    url = env.get("SCHEMA_REGISTRY_URL")
    if not reader or not url:
        return {}
    return {
        "SCHEMA_REGISTRY_URL": without_credentials(url),
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": reader,
        "SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS": "false",
    }


def local_client_config(env: Mapping[str, str]) -> dict[str, str]:
    """Client properties of the stack's local cluster (``env``: the stack's endpoints, security included)."""
    return KafkaSettings.from_mapping(env).client_config()


def remote_client_config(env: Mapping[str, str]) -> dict[str, str]:
    """Client properties of the stack's remote (SASL) cluster."""
    return RemoteKafkaSettings.from_mapping(remote_kafka_env(env)).client_config()


def remote_kafka_env(env: Mapping[str, str]) -> dict[str, str]:
    """The remote cluster's ``REMOTE_KAFKA_*`` endpoints as ``KAFKA_*`` settings (what ``read_topic`` and
    ``KafkaSettings.from_mapping`` take)."""
    return {key.removeprefix("REMOTE_"): value for key, value in env.items() if key.startswith("REMOTE_KAFKA_")}


def ensure_catalogue_topics(env: Mapping[str, str]) -> None:
    """Every catalogue topic on its cluster, with the catalogue's partitions and configs (as the generator does)."""
    from schemas.catalogue import load_catalogue
    from services.common.kafka import ensure_topics

    clusters = {"local": local_client_config(env), "remote": remote_client_config(env)}
    for cluster, config in clusters.items():
        specs = load_catalogue().on_cluster(cluster)
        topics = [(spec.name, spec.partitions, spec.topic_config()) for spec in specs]
        ensure_topics(KafkaSettings.from_client_config(config), topics)


LOOPBACK = "127.0.0.1"
_FREE_PORT_FLOOR = 10_000


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A loopback port free now, for a server about to start: chosen below the kernel's ephemeral range, because a
    port from that range can be handed to any outgoing connection between this call and the server's bind (seen as
    a Flink RPC port taken while tests ran side by side)."""
    ceiling = max(_ephemeral_floor(), _FREE_PORT_FLOOR + 1_000)
    for _ in range(1_000):
        port = random.randrange(_FREE_PORT_FLOOR, ceiling)
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port between {_FREE_PORT_FLOOR} and {ceiling}")


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

_TIMEOUT_S = 15.0


class ClusterProbe:
    """End offsets and consumer-group lag of one cluster, through one admin client kept for the whole job."""

    def __init__(self, client_config: Mapping[str, Any]) -> None:
        self.admin = AdminClient(dict(client_config))

    def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        metadata = self.admin.list_topics(timeout=_TIMEOUT_S)
        return [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata.topics and metadata.topics[topic].error is None
            for p in metadata.topics[topic].partitions
        ]

    def _ends(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        futures = self.admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=_TIMEOUT_S)
        return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}

    @_retry_kafka
    def end_offsets(self, topics: list[str]) -> dict[str, int]:
        """Sum of high watermarks per topic (0 for a topic that does not exist)."""
        totals = dict.fromkeys(topics, 0)
        for (topic, _), end in self._ends(self._partitions(topics)).items():
            totals[topic] += end
        return totals

    def _committed(self, group: str, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        committed = self.admin.list_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result()
        return {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}

    @_retry_kafka
    def committed(self, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
        """The offsets ``group`` committed on ``topics`` (negative where it committed none)."""
        return self._committed(group, self._partitions(topics))

    @_retry_kafka
    def group_lag(self, group: str, topics: list[str]) -> int:
        """Records of ``topics`` not yet committed by consumer group ``group``."""
        return self.lag_now(group, topics)

    def lag_now(self, group: str, topics: list[str]) -> int:
        """``group_lag`` in one attempt: raises ``KafkaException`` when the cluster does not answer now."""
        partitions = self._partitions(topics)
        positions = self._committed(group, partitions)
        return sum(end - max(positions.get(key, 0), 0) for key, end in self._ends(partitions).items())


_probes: dict[tuple[tuple[str, str], ...], ClusterProbe] = {}


def probe(client_config: Mapping[str, Any]) -> ClusterProbe:
    """The job's one probe per cluster (keyed by its client configuration)."""
    key = tuple(sorted((str(k), str(v)) for k, v in client_config.items()))
    if key not in _probes:
        _probes[key] = ClusterProbe(client_config)
    return _probes[key]


def end_offsets(client_config: Mapping[str, Any], topics: list[str]) -> dict[str, int]:
    """Sum of high watermarks per topic (0 for a topic that does not exist)."""
    return probe(client_config).end_offsets(topics)


def group_lag(client_config: Mapping[str, Any], group: str, topics: list[str]) -> int:
    """Records of ``topics`` not yet committed by consumer group ``group``."""
    return probe(client_config).group_lag(group, topics)


@_retry_kafka
def readable_ends(client_config: Mapping[str, Any], topics: list[str]) -> dict[tuple[str, int], int]:
    """Per partition of ``topics``, the offset just past its last record a ``read_committed`` consumer receives.

    On a topic written with transactions (the mirror's) that is short of the high watermark by the trailing commit
    marker (and any aborted records before it), and a Java consumer such as Flink's Kafka source commits there, never
    past it: its lag against the high watermark never reaches 0. Read once the topic's writers are done."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": "freightline-inspect",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        metadata = consumer.list_topics(timeout=_TIMEOUT_S).topics
        for topic in topics:
            if topic not in metadata or metadata[topic].error is not None:
                continue
            for p in sorted(metadata[topic].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT_S)
                ends[(topic, p)] = _last_readable(consumer, TopicPartition(topic, p), low, high)
        return ends
    finally:
        consumer.close()


def _last_readable(consumer: Consumer, partition: TopicPartition, low: int, high: int) -> int:
    """The offset after the last record readable between ``low`` and ``high``, looking back further each time."""
    back = 64
    while True:
        start = max(low, high - back)
        consumer.assign([TopicPartition(partition.topic, partition.partition, start)])
        last = None
        while (message := consumer.poll(_TIMEOUT_S)) is not None:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(error)
            last = message.offset()
        if last is not None:
            return int(last) + 1
        if start == low:
            return low
        back *= 16


def group_behind(client_config: Mapping[str, Any], group: str, ends: Mapping[tuple[str, int], int]) -> int:
    """Records ``group`` has not committed short of ``ends`` (per partition, as ``readable_ends`` gives them)."""
    committed = probe(client_config).committed(group, sorted({topic for topic, _ in ends}))
    return sum(max(end - max(committed.get(key, 0), 0), 0) for key, end in ends.items())


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@_retry_kafka
def commit_end_offsets(client_config: Mapping[str, Any], group: str, topics: list[str]) -> None:
    """Commit the current end of ``topics`` for ``group`` (a new group then starts at the end, not the history)."""
    consumer = Consumer({**client_config, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=15)
        offsets = []
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            for p in described.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                offsets.append(TopicPartition(topic, p, high))
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@_retry_kafka
def commit_positions(client_config: Mapping[str, Any], group: str, topic: str, positions: Mapping[int, int]) -> None:
    """Commit ``positions`` (offset per partition of ``topic``) for ``group``: where it starts reading next."""
    consumer = Consumer({**client_config, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = [TopicPartition(topic, p, offset) for p, offset in positions.items()]
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def committed_offsets(client_config: Mapping[str, Any], group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed on ``topics`` (negative where it committed none)."""
    return probe(client_config).committed(group, topics)


@_retry_kafka
def group_members(client_config: Mapping[str, Any], group: str) -> tuple[str, list[tuple[str, str | None]]]:
    """A group's state name and its members as (member id, group instance id)."""
    admin = AdminClient(dict(client_config))
    described = admin.describe_consumer_groups([group])[group].result(timeout=15)
    members = [(m.member_id, m.group_instance_id) for m in described.members]
    return described.state.name, members
