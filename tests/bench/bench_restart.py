"""Back to work after a crash: per consumer service, SIGKILL while it has lag, restart at once, and time the
restart to the service's first commit (and to its rejoining the group), against the same restart with dynamic
group membership in the same run.

Every service runs as a process (``deploy.processes.ServiceProcess``, as the main job starts them) in a group of
its own that starts at the current end of its topics, while the generator produces about 1,000 events/s.

- Baseline: every service with ``<PREFIX>INSTANCE_ID`` empty (dynamic membership), killed and restarted at once,
  all together: the restarted member waits until the group drops the dead one (its session timeout). The mirror's
  transactional id is its instance id, so without one it runs at least once (``MIRROR_EXACTLY_ONCE=false``).
- Static membership (the default: ``<service>-<host name>``): the services are killed and restarted one at a
  time while the others keep running.

Goal: back to work within 10 s of the restart; the file sinks commit a batch only when its files rotate, so
their first commit is due within 10 s plus their rotation interval.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from deploy.processes import (
    ServiceProcess,
    commit_end_offsets,
    ensure_catalogue_topics,
    local_client_config,
    remote_client_config,
    wait_until,
)
from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.common.sinks.settings import FILE_ROTATION_INTERVAL_S
from services.enricher.settings import SOURCE_TOPICS
from services.mirror.settings import MirrorSettings
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_mongodb.settings import MongoSinkSettings
from tests.bench.bench_latency import GENERATOR_RATES

GOAL_S = 10.0
WAIT_S = 150.0


@dataclass
class Service:
    """One consumer service under test: how to start it, and the group whose commits tell it is working."""

    name: str
    module: str
    prefix: str
    topics: list[str]
    remote: bool = False
    files: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    group: str = ""
    process: ServiceProcess | None = None
    starts: int = 0

    def start(self, env: Mapping[str, str], logs: Path, instance_id: str | None) -> None:
        extra = dict(self.overrides)
        if instance_id is not None:
            extra[f"{self.prefix}INSTANCE_ID"] = instance_id
        if instance_id == "" and self.name == "mirror":
            # The mirror's transactional id is its instance id: without one it copies at least once.
            extra["MIRROR_EXACTLY_ONCE"] = "false"
        self.starts += 1  # a log per process: the killed one's and the restarted one's
        log = logs / f"{self.name}-{self.starts}.log"
        self.process = ServiceProcess(self.module, env, log, **extra).start()

    def kill(self) -> None:
        assert self.process is not None and self.process.process is not None
        self.process.process.kill()
        self.process.process.wait()


def _services(run_id: str, logs: Path) -> list[Service]:
    mirror = MirrorSettings()
    group = f"bench-restart-{run_id}"
    specs = [
        Service("mirror", "services.mirror", "MIRROR_", mirror.source_topics(), remote=True),
        Service("enricher", "services.enricher", "ENRICHER_", list(SOURCE_TOPICS.values())),
        Service("anomaly_detector", "services.anomaly_detector", "ANOMALY_DETECTOR_", list(INPUT_TOPICS)),
        Service("sink_mongodb", "services.sink_mongodb", "SINK_MONGODB_", MongoSinkSettings().topic_list()),
        Service("sink_hdfs", "services.sink_hdfs", "SINK_HDFS_", HdfsSinkSettings().topic_list(), files=True),
        Service("sink_gcs", "services.sink_gcs", "SINK_GCS_", GcsSinkSettings().topic_list(), files=True),
    ]
    for spec in specs:
        spec.group = f"{group}-{spec.name}"
        key = "APP_ID" if spec.name == "enricher" else "GROUP_ID"
        spec.overrides[f"{spec.prefix}{key}"] = spec.group
    specs[1].overrides["ENRICHER_DATA_DIR"] = str(logs / "enricher-data")
    specs[3].overrides["SINK_MONGODB_DATABASE"] = f"bench_restart_{run_id}"
    specs[4].overrides["SINK_HDFS_ROOT"] = f"/bench/restart-{run_id}"
    specs[5].overrides["SINK_GCS_PREFIX"] = f"bench/restart-{run_id}"
    return specs


class Probe:
    """Commits and members of the group that consumes a service's topics, through one admin client (a request
    each, no consumer)."""

    def __init__(self, service: Service, config: dict[str, str], group: str) -> None:
        self.service = service
        self.group = group
        self.admin = AdminClient(dict(config))

    def committed(self) -> int:
        request = [ConsumerGroupTopicPartitions(self.group)]
        result = self.admin.list_consumer_group_offsets(request)[self.group].result(timeout=15)
        topics = set(self.service.topics)
        return sum(max(tp.offset, 0) for tp in result.topic_partitions or [] if tp.topic in topics)

    def members(self) -> tuple[str, list[str]]:
        described = self.admin.describe_consumer_groups([self.group])[self.group].result(timeout=15)
        return described.state.name, [member.member_id for member in described.members]


def _groups(service: Service) -> tuple[str, dict[str, list[str]]]:
    """The group consuming the service's topics (the probed one), and every group of the service with the topics
    to start it at the end of. The detector consumes the raw topics in its repartition stage's group and its own
    repartition topic in the detection group: both start at the end, or the first would read the whole history."""
    if service.name != "anomaly_detector":
        return service.group, {service.group: service.topics}
    stage1 = DetectorSettings.model_construct(group_id=service.group).repartition_group_id
    return stage1, {stage1: service.topics, service.group: [*service.topics, DETECTOR_INPUT]}


def _prepare(env: Mapping[str, str], services: list[Service], prefix: str) -> dict[str, Probe]:
    local, remote = local_client_config(env), remote_client_config(env)
    probes = {}
    for service in services:
        service.group = f"{service.group}-{prefix}"
        key = "APP_ID" if service.name == "enricher" else "GROUP_ID"
        service.overrides[f"{service.prefix}{key}"] = service.group
        config = remote if service.remote else local
        probed, groups = _groups(service)
        for group, topics in groups.items():
            commit_end_offsets(config, group, topics)
        probes[service.name] = Probe(service, config, probed)
    return probes


def _working(probes: dict[str, Probe], start: dict[str, int]) -> bool:
    """Every service committed past where its group started, and is a member (the kill leaves a session)."""
    return all(probe.committed() > start[name] and probe.members()[1] for name, probe in probes.items())


@dataclass
class Restart:
    rejoined_s: float | None = None
    committed_s: float | None = None


def _restart(
    env: Mapping[str, str], logs: Path, group: list[Service], probes: dict[str, Probe], instance_id: str | None
) -> dict[str, Restart]:
    """Kill every service of ``group`` while it has lag, restart them at once; time rejoin and first commit."""
    before = {s.name: (probes[s.name].committed(), probes[s.name].members()[1]) for s in group}
    for service in group:
        service.kill()
    after_kill = {s.name: probes[s.name].committed() for s in group}
    started = time.monotonic()
    for service in group:
        service.start(env, logs, instance_id)
    results = {s.name: Restart() for s in group}
    deadline = started + WAIT_S
    while time.monotonic() < deadline and any(r.committed_s is None for r in results.values()):
        for service in group:
            result, probe = results[service.name], probes[service.name]
            if result.rejoined_s is None:
                state, members = probe.members()
                if state == "STABLE" and members and not set(members) & set(before[service.name][1]):
                    result.rejoined_s = time.monotonic() - started
            if result.committed_s is None and probe.committed() > max(
                after_kill[service.name], before[service.name][0]
            ):
                result.committed_s = time.monotonic() - started
                if result.rejoined_s is None:
                    result.rejoined_s = result.committed_s
        time.sleep(0.2)
    return results


def _phase(
    env: Mapping[str, str], logs: Path, run_id: str, label: str, instance_id: str | None, one_at_a_time: bool
) -> dict[str, Restart]:
    services = _services(run_id, logs)
    probes = _prepare(env, services, label)
    try:
        start = {name: probe.committed() for name, probe in probes.items()}  # the ends committed beforehand
        for service in services:
            service.start(env, logs / label, instance_id)
        if not wait_until(lambda: _working(probes, start), 240, 1.0):
            raise RuntimeError(f"services did not commit before the crash; logs in {logs / label}")
        if one_at_a_time:
            results: dict[str, Restart] = {}
            for service in services:
                results.update(_restart(env, logs / label, [service], probes, instance_id))
            return results
        return _restart(env, logs / label, services, probes, instance_id)
    finally:
        for service in services:
            if service.process is not None:
                service.process.stop()


START_UP_BOUND = (
    "What is left is the process's start-up on a loaded machine: importing the service (python -X importtime: "
    "pydantic-settings, the Kafka and target clients) and connecting, then its first batch; see tests/bench/README.md."
)


def _row(name: str, value: float | None, baseline: float | None, goal_s: float, what: str) -> dict[str, Any]:
    met = value is not None and value <= goal_s
    row: dict[str, Any] = {
        "name": f"restart {name}: SIGKILL, restart at once -> {what}",
        "value": round(value, 1) if value is not None else float("nan"),
        "unit": "s",
        "baseline_name": "the same with dynamic membership (waits out the session)",
        "baseline_value": round(baseline, 1) if baseline is not None else float("nan"),
        "ratio": round(value / baseline, 3) if value is not None and baseline else None,
        "goal": f"<= {goal_s:.0f} s",
        "met": met,
    }
    if not met:
        row["note"] = START_UP_BOUND
    return row


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix=f"bench-restart-{run_id}-"))
    ensure_catalogue_topics(env)
    generator = ServiceProcess(
        "services.generator", env, logs / "generator.log", "--duration", "1200", "--pace", **GENERATOR_RATES
    ).start()
    try:
        dynamic = _phase(env, logs, run_id, "dynamic", "", one_at_a_time=False)
        static = _phase(env, logs, run_id, "static", None, one_at_a_time=True)
    finally:
        generator.stop(10)
    rows = []
    for service in _services(run_id, logs):
        goal = GOAL_S + (FILE_ROTATION_INTERVAL_S if service.files else 0)
        what = "first commit" + (" (a rotation later)" if service.files else "")
        rows.append(_row(service.name, static[service.name].committed_s, dynamic[service.name].committed_s, goal, what))
        rows.append(
            _row(
                service.name,
                static[service.name].rejoined_s,
                dynamic[service.name].rejoined_s,
                GOAL_S,
                "rejoined the group",
            )
        )
    return rows
