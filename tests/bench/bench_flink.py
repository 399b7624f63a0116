"""Events/s through each Flink window job on the stack's cluster, side by side in one run with the broker's own
consumer performance tool reading the same topic (the ceiling) and, for the product-views job, the same tumbling
window aggregation written with Quix Streams (the Python peer); events/s per core used; and the window latency.

Each job reads a source of ``EVENTS`` events of its own kind (3 partitions; the generators of the jobs' oracle
tests, ``tests/integration/flink/oracle.py``), with its own topics, table and group, configured as the product is
(its settings' defaults: parallelism and checkpoint interval, said in each row's note). A job is timed by the
records its source operators have read (``numRecordsOut`` of the ``Source:`` operators), sampled once a second from
the TaskManager's Prometheus reporter, which serves counters live: between the first and the last sample taken
while the source had read some but not all of it, so start-up, the last checkpoint and the wait for its commit are
excluded and the checkpoint interval does not quantise the figure. The source is chained to the parsing and the
local (first-phase) window aggregation and the network buffers to the global aggregation and the sinks are small,
so the source reads no faster than the job processes (its back-pressured time says so). The run still waits for
the group to commit the whole source (the job's exactly-once output committed). CPU: the TaskManager JVM's CPU
time (``Status.JVM.CPU.Time``) at the same two samples: events per CPU second is events/s per core used. The
TaskManager is the shared cluster's: another job running there at the same time is counted too (the row's note
says how many others ran).

Where the time goes (the note of a row whose goal is not met): over the same interval, the CPU every process on
the machine used and how many of its threads waited for a core (``tests/bench/machine_cpu.py``: ``/proc``, the
scheduler's run queue and the kernel's CPU pressure), each task's busy, back-pressured and idle ms per second, and
the checkpoints completed meanwhile.

Baselines and goals, per job: Kafka's ``org.apache.kafka.tools.ConsumerPerformance`` (the class behind
``kafka-consumer-perf-test``, the brokers' version, from the ``kafka-tools`` runtime of the stack's jars) over the
same topic, its fetch rate (group join excluded): >= 0.3x; Flink's published Nexmark figure for tumbling windows,
about 12,300 events/s per core, as the goal of 12,000 events/s per core used: >= 1x. Product views: the same
aggregation with Quix Streams 3.28.1 (``tests/bench/quix_windows.py`` in ``deploy/bootstrap/envs/quix``: per
product, views, distinct devices and last view time per 1-minute event-time window, the closed windows to a topic
in Avro through the registry; the source keyed by product id for it, Quix windows group by key), at its defaults
(commits every 5 s, after processing), timed by its group's commits: between the first and the last commit made
while records were left (both exact; start-up and the last commit excluded, as for Flink): >= 3x.

Window latency (informational): the product-views job over a live stream (events every 10 ms, event time running
at wall-clock speed, bound 1 s, the product's checkpoint interval): from the moment the stream's event time passes
a window's end to the moment a ``read_committed`` consumer receives the window, against the bound, the earliest a
window can close (the next checkpoint then commits it, within one interval: the interval is the latency's price).

``FREIGHTLINE_BENCH_FLINK_EVENTS`` sets each source's size (default 300,000; a few thousand prove the bench
works); ``FREIGHTLINE_BENCH_FLINK_JOBS`` the jobs (comma-separated, default all).
``python -m tests.bench.bench_flink`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import Consumer, TopicPartition

from deploy import flink_jobs
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.jars import classpath
from deploy.local.settings import StackSettings
from deploy.processes import group_lag, wait_until
from schemas.catalogue import load_catalogue, load_schema, schema_text
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from stream_processors import product_views
from tests.bench import machine_cpu
from tests.bench.rows import row, stack_env
from tests.integration.enricher import support as enricher_support
from tests.integration.flink import oracle
from tests.integration.flink.support import produce_source

EVENTS = 1_000_000
PARTITIONS = 3
BROKER_GOAL = 0.3
QUIX_GOAL = 3.0
PER_CORE_GOAL = 12_000.0  # events/s per core: Flink's published Nexmark tumbling-window figure is about 12,300
BOUND = dt.timedelta(seconds=30)  # the sources' out-of-orderness, the jobs' default bound
TIMEOUT_S = 1800  # hang guard
QUIX_ENV = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "quix"

Events = Callable[[int, int, dt.datetime, dt.timedelta], list[dict[str, Any]]]
# each job's source events (the generator of its oracle test) and its source key (None: the event id)
SOURCES: dict[str, tuple[Events, Callable[[Mapping[str, Any]], str] | None]] = {
    "product_views": (oracle.product_views_events, lambda event: str(event["product_id"])),
    "store_order_revenue": (oracle.orders_events, None),
    "route_shipment_delays": (oracle.shipment_events, None),
    "service_error_rate": (oracle.clickstream_events, None),
    "category_top_products": (oracle.enriched_view_events, None),
}


def _commits(group: str, source: str, events: int, client: dict[str, str]) -> list[tuple[float, int]]:
    """Wait until ``group`` has committed all of ``source``; returns each lag it was seen at (polled every 0.2 s)
    with the time it was first seen, from ``events`` (nothing committed) to 0."""
    seen: list[tuple[float, int]] = [(time.time(), events)]

    def read() -> bool:
        lag = group_lag(client, group, [source])
        if lag != seen[-1][1]:
            seen.append((time.time(), lag))
        return lag == 0

    if not wait_until(read, TIMEOUT_S, 0.2):
        raise RuntimeError(f"the group {group} did not commit {source} within {TIMEOUT_S} s")
    return seen


def commit_rate(seen: Sequence[tuple[float, int]], events: int) -> tuple[float, bool]:
    """Records/s from a group's commits (``_commits``) and whether it is a rate: between the first and the last
    commit taken while records were still left (both exact), or else from the first sighting to the end (start-up
    and the wait for the last commit included)."""
    inside = [(at, lag) for at, lag in seen if 0 < lag < events]
    if len(inside) >= 2:
        return (inside[0][1] - inside[-1][1]) / (inside[-1][0] - inside[0][0]), True
    return events / (seen[-1][0] - seen[0][0]), False


# what each task's time went to, per second (Flink's task metrics); a source's "idle" is time with no record to emit
TASK_TIME = ("busyTimeMsPerSecond", "backPressuredTimeMsPerSecond", "idleTimeMsPerSecond")
_LABELS = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Sample:
    at: float
    read: float  # records the job's sources have read
    cpu_s: float  # the TaskManager JVM's CPU seconds
    tasks: dict[str, dict[str, float]]  # task name: TASK_TIME values
    machine: machine_cpu.Snapshot  # every process's CPU


class TaskManagerSamples:
    """Samples, once a second while a job runs, the shared TaskManager's Prometheus reporter: the records the job's
    source operators have read (``numRecordsOut`` of its ``Source__*`` operators), the JVM's CPU time and, per task,
    ``busyTimeMsPerSecond``, ``backPressuredTimeMsPerSecond`` and ``idleTimeMsPerSecond``; and every process's CPU
    on the machine (``machine_cpu``). The reporter serves the counters live (the REST API's are cached for 10 s),
    so a rate between two samples taken while the source is still reading is exact, whatever the checkpoint
    interval."""

    def __init__(self, job_id: str, rest_url: str) -> None:
        self.job_id, self.rest_url = job_id, rest_url
        self.url = f"http://127.0.0.1:{StackSettings().flink_taskmanager_metrics_port}/metrics"
        self.samples: list[Sample] = []
        self.checkpoints: dict[int, dict[str, Any]] = {}  # id: the REST API's history entry, once completed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TaskManagerSamples:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(1.0):
                try:
                    self.samples.append(self.parse(client.get(self.url).text, time.time(), machine_cpu.snapshot()))
                    # the history holds the last 10 only: kept as they complete
                    history = client.get(f"{self.rest_url}/jobs/{self.job_id}/checkpoints").json().get("history", [])
                    self.checkpoints.update({item["id"]: item for item in history if item["status"] == "COMPLETED"})
                except (httpx.HTTPError, ValueError, KeyError):
                    continue

    def parse(self, text: str, at: float, machine: machine_cpu.Snapshot) -> Sample:
        """A sample of this job from the reporter's page ``text`` read at ``at``, with the machine's ``machine``."""
        read, cpu = 0.0, 0.0
        tasks: dict[str, dict[str, float]] = {}
        job = f'job_id="{self.job_id}"'
        for line in text.splitlines():
            if line.startswith("flink_taskmanager_Status_JVM_CPU_Time{"):
                cpu = float(line.rsplit(" ", 1)[1]) / 1e9
            elif job not in line:
                continue
            elif line.startswith("flink_taskmanager_job_task_operator_numRecordsOut{"):
                if 'operator_name="Source:' in line:
                    read += float(line.rsplit(" ", 1)[1])
            elif line.startswith("flink_taskmanager_job_task_"):
                metric = line[len("flink_taskmanager_job_task_") : line.index("{")]
                if metric in TASK_TIME:
                    labels = dict(_LABELS.findall(line))
                    name = labels.get("task_name", "?") + "#" + labels.get("subtask_index", "0")
                    tasks.setdefault(name, {})[metric] = float(line.rsplit(" ", 1)[1])
        return Sample(at, read, cpu, tasks, machine)

    def reading(self, events: int) -> tuple[Sample, Sample] | None:
        """The first and the last sample taken while the sources had read some but not all of ``events``."""
        inside = [sample for sample in self.samples if 0 < sample.read < events]
        return (inside[0], inside[-1]) if len(inside) >= 2 and inside[-1].at > inside[0].at else None

    def task_times(self, start: float, end: float) -> dict[str, dict[str, float]]:
        """Per task (its first operator's name, per subtask): each TASK_TIME metric's mean over ``[start, end]``."""
        sums: dict[str, dict[str, list[float]]] = {}
        for sample in self.samples:
            if start <= sample.at <= end:
                for name, values in sample.tasks.items():
                    for metric, value in values.items():
                        sums.setdefault(name, {}).setdefault(metric, []).append(value)
        return {name: {m: sum(v) / len(v) for m, v in metrics.items()} for name, metrics in sums.items()}

    def checkpoint_stats(self, start: float, end: float) -> str:
        """The checkpoints triggered in ``[start, end]``: how many completed, their mean and largest duration."""
        durations = [
            float(item["end_to_end_duration"])
            for item in self.checkpoints.values()
            if start * 1000 <= item["trigger_timestamp"] <= end * 1000
        ]
        if not durations:
            return "no checkpoint completed in the interval"
        return (
            f"{len(durations)} checkpoints, {sum(durations) / len(durations):.0f} ms mean, {max(durations):.0f} ms max"
        )


def describe_tasks(times: Mapping[str, Mapping[str, float]]) -> str:
    """``task ms/s busy/back-pressured/idle: Source_source_1#0: 210/0/790; ...``, one entry per task."""
    parts = []
    for name, values in sorted(times.items()):
        task, subtask = name.rsplit("#", 1)
        short = re.sub(r"_+", "_", re.split(r"_{4,}", task)[0]).strip("_")[:40]
        ms = "/".join(f"{values.get(metric, 0.0):.0f}" for metric in TASK_TIME)
        parts.append(f"{short}#{subtask}: {ms}")
    return "task ms/s busy/back-pressured/idle: " + "; ".join(parts)


def _job_settings(name: str, run: str, source: str, env: dict[str, str]) -> dict[str, str]:
    prefix = flink_jobs.job(name).settings_prefix
    sink, late = f"bench-flink-{name}-agg-{run}", f"bench-flink-{name}-late-{run}"
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(sink, 3, {}), (late, 1, {})])
    return {
        f"{prefix}SOURCE_TOPIC": source,
        f"{prefix}SINK_TOPIC": sink,
        f"{prefix}LATE_TOPIC": late,
        f"{prefix}POSTGRES_TABLE": f"streaming.bench_{name}_{run}",
        f"{prefix}GROUP_ID": f"bench-flink-{name}-{run}",
    }


def _drop_table(env: dict[str, str], table: str) -> None:
    with psycopg.connect(env["POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}".encode())


@dataclass(frozen=True)
class FlinkRun:
    rate: float  # events/s
    per_core: float  # events per TaskManager CPU second (0: not measured)
    others: int  # other jobs running on the cluster meanwhile
    machine: machine_cpu.Usage | None  # every process's CPU over the timed interval
    tasks: dict[str, dict[str, float]]  # per task: TASK_TIME means over the timed interval
    checkpoints: str  # the checkpoints of the timed interval
    commits: list[tuple[float, int]]  # the group's lag as its commits were seen (``_commits``)
    running_at: float  # when the cluster reported the job RUNNING

    def where_the_time_goes(self) -> str:
        machine = f"{machine_cpu.describe(self.machine)}; " if self.machine else ""
        return f"{machine}{describe_tasks(self.tasks)}; {self.checkpoints}"


def _flink_rate(
    ctx: StackContext,
    env: dict[str, str],
    name: str,
    source: str,
    events: int,
    overrides: Mapping[str, str] | None = None,
) -> FlinkRun:
    """Job ``name`` over ``source``: its events/s, events per TaskManager CPU second, how many other jobs ran on
    the cluster meanwhile and where the time went, all between the first and the last sample of the TaskManager
    taken while the source was reading (``TaskManagerSamples``). ``overrides``: job settings (without the job's
    prefix) over the bench's."""
    run = uuid.uuid4().hex[:8]
    prefix = flink_jobs.job(name).settings_prefix
    settings = {
        **_job_settings(name, run, source, env),
        **{f"{prefix}{key}": value for key, value in (overrides or {}).items()},
    }
    rest_url = env["FLINK_REST_URL"]
    job_id = flink_jobs.submit(ctx, name, rest_url, {**env, **settings})
    client = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    try:
        with TaskManagerSamples(job_id, rest_url) as samples:
            seen = _commits(settings[f"{prefix}GROUP_ID"], source, events, client)
        reading = samples.reading(events)
        start, end = (reading[0].at, reading[1].at) if reading else (seen[0][0], seen[-1][0])
        checkpoints = samples.checkpoint_stats(start, end)
        running_at = flink_jobs.job_details(rest_url, job_id)["timestamps"]["RUNNING"] / 1000
        jobs = httpx.get(f"{rest_url}/jobs/overview", timeout=10).json()["jobs"]
        others = sum(1 for job in jobs if job["state"] == "RUNNING" and job["jid"] != job_id)
    finally:
        flink_jobs.cancel(rest_url, job_id)
        _drop_table(env, settings[f"{prefix}POSTGRES_TABLE"])
    tasks = samples.task_times(start, end)
    if reading is None:  # read whole within a sample: start-up and the last commit included, no CPU figure
        return FlinkRun(commit_rate(seen, events)[0], 0.0, others, None, tasks, checkpoints, seen, running_at)
    first, last = reading
    cpu = last.cpu_s - first.cpu_s
    return FlinkRun(
        (last.read - first.read) / (last.at - first.at),
        (last.read - first.read) / cpu if cpu > 0 else 0.0,
        others,
        machine_cpu.usage(first.machine, last.machine),
        tasks,
        checkpoints,
        seen,
        running_at,
    )


def _quix_rate(env: dict[str, str], source: str, events: int, work: Path) -> float:
    """Events/s of the same product-views aggregation as a Quix Streams application (its own environment)."""
    subprocess.run(["bash", str(QUIX_ENV / "setup.sh")], check=True, capture_output=True)
    run = uuid.uuid4().hex[:8]
    output, group = f"bench-quix-windows-{run}", f"bench-quix-windows-{run}"
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(output, 3, {})])
    config: dict[str, Any] = {
        "bootstrap": env["KAFKA_BOOTSTRAP_SERVERS"],
        "registry_url": env["SCHEMA_REGISTRY_URL"],
        "group": group,
        "state_dir": str(work / "quix-state"),
        "source": source,
        "output": output,
        "schema": load_schema(load_catalogue().topic(product_views.JOB.sink_contract).value_schema),
        "grace_ms": int(BOUND.total_seconds() * 1000),
    }
    path = work / "quix.json"
    path.write_text(json.dumps(config))
    with (work / "quix.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(QUIX_ENV / ".venv" / "bin" / "python"),
                str(REPO_ROOT / "tests" / "bench" / "quix_windows.py"),
                str(path),
            ],
            env={**enricher_support.process_env(env)},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        client = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
        seen = _commits(group, source, events, client)
    finally:
        code = enricher_support.stop(process)
    if code not in (0, -15):
        raise RuntimeError(f"the Quix Streams application exited {code}: see {work / 'quix.log'}")
    return commit_rate(seen, events)[0]


def _broker_rate(ctx: StackContext, env: dict[str, str], source: str, events: int) -> float:
    """Records/s of Kafka's consumer performance tool over ``source`` (its fetch rate, the group join excluded)."""
    command = [
        "java",
        "-Xmx512m",
        "-cp",
        classpath(ctx.paths, "kafka-tools"),
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        env["KAFKA_BOOTSTRAP_SERVERS"],
        "--topic",
        source,
        "--messages",
        str(events),
        "--group",
        f"bench-perf-{uuid.uuid4().hex[:8]}",
        "--timeout",
        "60000",
        "--hide-header",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=TIMEOUT_S)
    lines = [line for line in result.stdout.splitlines() if line.count(",") >= 9]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"ConsumerPerformance failed ({result.returncode}): {result.stdout}{result.stderr[-2000:]}")
    # start.time, end.time, MB, MB/s, records, records/s, rebalance ms, fetch ms, fetch MB/s, fetch records/s
    fields = [field.strip() for field in lines[-1].split(",")]
    if int(fields[4]) < events:
        raise RuntimeError(f"ConsumerPerformance read {fields[4]} of {events} records")
    return float(fields[9])


def _window_latency_s(ctx: StackContext, env: dict[str, str]) -> float:
    """Seconds from the moment a live stream's event time passes a window's end to the moment a ``read_committed``
    consumer receives that window from the product-views job (bound 1 s, the product's checkpoint interval)."""
    run = uuid.uuid4().hex[:8]
    source = f"bench-flink-live-{run}"
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), [(source, 1, {})])
    settings = {
        **_job_settings("product_views", run, source, env),
        "PRODUCT_VIEWS_JOB_MAX_OUT_OF_ORDERNESS_MS": "1000",
    }
    rest_url = env["FLINK_REST_URL"]
    job_id = flink_jobs.submit(ctx, "product_views", rest_url, {**env, **settings})
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    schema = schema_text(load_catalogue().topic(product_views.JOB.source_contract).value_schema)
    encoder = serde.encoder(subject_for(source), schema)
    stop = threading.Event()
    try:
        wait_until(lambda: flink_jobs.job_details(rest_url, job_id)["state"] == "RUNNING", 300)
        # event time = wall clock + shift, so that it passes a minute's end 15 s after the stream starts
        now = dt.datetime.now(dt.UTC)
        window_end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=2)
        shift = window_end - dt.timedelta(seconds=15) - now

        def stream() -> None:
            producer = Producer(producer_config(KafkaSettings(bootstrap_servers=bootstrap), "bench-live"))
            rng = random.Random(3)
            while not stop.is_set():
                event = oracle.product_views_events(
                    rng.randint(0, 1 << 30), 1, dt.datetime.now(dt.UTC) + shift, dt.timedelta(0)
                )[0]
                producer.produce(source, encoder.encode(event), str(event["product_id"]))
                producer.poll(0)
                time.sleep(0.01)
            producer.flush(30)

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"bench-live-{run}", "isolation.level": "read_committed"}
        )
        sink = settings["PRODUCT_VIEWS_JOB_SINK_TOPIC"]
        try:
            partitions = consumer.list_topics(sink, timeout=10).topics[sink].partitions
            consumer.assign([TopicPartition(sink, p, 0) for p in partitions])
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                message = consumer.poll(0.05)
                if message is None or message.error() is not None:
                    continue
                received = dt.datetime.now(dt.UTC)
                if serde.decode(message.value())["window_end"] == window_end:
                    return (received - (window_end - shift)).total_seconds()
        finally:
            consumer.close()
        raise RuntimeError(f"no window ending at {window_end} (event time) within 300 s")
    finally:
        stop.set()
        flink_jobs.cancel(rest_url, job_id)
        _drop_table(env, settings["PRODUCT_VIEWS_JOB_POSTGRES_TABLE"])


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    events = int(env.get("FREIGHTLINE_BENCH_FLINK_EVENTS", EVENTS))
    names = [name for name in env.get("FREIGHTLINE_BENCH_FLINK_JOBS", ",".join(SOURCES)).split(",") if name]
    ctx = StackContext.create(StackSettings())
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    rows = []
    for name in names:
        make_events, key = SOURCES[name]
        source = f"bench-flink-{name}-src-{uuid.uuid4().hex[:8]}"
        ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(source, PARTITIONS, {})])
        produce_source(env, flink_jobs.job(name).job, source, make_events(7, events, start, BOUND), key=key)
        broker = _broker_rate(ctx, env, source, events)  # first: it also warms the brokers' cache for the others
        flink = _flink_rate(ctx, env, name, source, events)
        configured = flink_jobs.job_settings(flink_jobs.job(name), {**env, **_job_settings(name, "-", source, env)})
        note = (
            f"{events:,} events, parallelism {configured.parallelism}, checkpoints every "
            f"{configured.checkpoint_interval_ms / 1000:g} s (the product's settings), timed by the source's records "
            "read between two TaskManager samples"
        )
        if flink.others:
            note += f"; {flink.others} other jobs ran on the cluster meanwhile"
        needed = BROKER_GOAL * broker
        cores = f"{needed / flink.per_core:.2f} TaskManager core" if flink.per_core else "more TaskManager CPU"
        rows.append(
            row(
                f"flink_{name}_events_per_s",
                flink.rate,
                "events/s",
                "Kafka's ConsumerPerformance (kafka-consumer-perf-test) fetch rate over the same topic",
                broker,
                BROKER_GOAL,
                note=note,
                bound=f"Where the time went: {flink.where_the_time_goes()}. {BROKER_GOAL:g}x the raw rate "
                f"({needed:,.0f} events/s) would need {cores} at the measured rate per core.",
            )
        )
        rows.append(
            row(
                f"flink_{name}_events_per_s_per_core",
                flink.per_core,
                "events/s per core",
                "goal: 12,000 events/s per core (Flink's Nexmark tumbling-window figure, ~12,300)",
                PER_CORE_GOAL,
                1.0,
                note="events over the TaskManager JVM's CPU seconds in the same interval",
            )
        )
        if name == "product_views":
            with tempfile.TemporaryDirectory() as tmp:
                quix = _quix_rate(env, source, events, Path(tmp))
            rows.append(
                row(
                    "flink_product_views_events_per_s_against_quix",
                    flink.rate,
                    "events/s",
                    "the same aggregation with Quix Streams 3.28.1 (one process, defaults), timed by its commits",
                    quix,
                    QUIX_GOAL,
                    note=note,
                    bound=f"Where the time went: {flink.where_the_time_goes()}.",
                )
            )
    latency = _window_latency_s(ctx, env)
    interval_s = product_views.ProductViewsJobSettings().checkpoint_interval_ms / 1000
    rows.append(
        row(
            "flink_product_views_window_latency_s",
            latency,
            "s",
            "the out-of-orderness bound (1 s): the earliest a window can close",
            1.0,
            None,
            note="window end (event time, running at wall-clock speed) to the window read by a read_committed "
            f"consumer; checkpoints every {interval_s:g} s (the product's setting): a window's output is committed by "
            "the next checkpoint",
        )
    )
    return rows


if __name__ == "__main__":
    json.dump(run(stack_env()), sys.stdout, indent=2)
    sys.stdout.write("\n")
