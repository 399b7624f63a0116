"""Events/s through each Flink window job on the stack's cluster, side by side in one run with the broker's own
consumer performance tool reading the same topic (the ceiling) and, for the product-views job, the same tumbling
window aggregation written with Quix Streams (the Python peer); events/s per core used; and the window latency.

Each job reads a source of ``EVENTS`` events of its own kind (3 partitions; the generators of the jobs' oracle
tests, ``tests/integration/flink/oracle.py``), with parallelism 1, checkpoints every second, its own topics, table
and group. A job is timed by its consumer group, whose offsets Flink commits at checkpoints: from the first commit
of some of the source to the commit of all of it (the records read in between over that time), so task start-up is
excluded; a source read whole before the first checkpoint is timed from the moment the cluster reports the job
RUNNING instead (start-up included: only a large source makes the figure a rate). CPU: the TaskManager JVM's CPU
time (``Status.JVM.CPU.Time`` from its Prometheus reporter, read at both ends of the same interval): events per CPU
second is events/s per core used. The TaskManager is the shared cluster's: another job running there at the same
time is counted too (the row's note says how many others ran).

Baselines and goals, per job: Kafka's ``org.apache.kafka.tools.ConsumerPerformance`` (the class behind
``kafka-consumer-perf-test``, the brokers' version, from the ``kafka-tools`` runtime of the stack's jars) over the
same topic, its fetch rate (group join excluded): >= 0.3x; Flink's published Nexmark figure for tumbling windows,
about 12,300 events/s per core, as the goal of 12,000 events/s per core used: >= 1x. Product views: the same
aggregation with Quix Streams 3.28.1 (``tests/bench/quix_windows.py`` in ``deploy/bootstrap/envs/quix``: per
product, views, distinct devices and last view time per 1-minute event-time window, the closed windows to a topic
in Avro through the registry; the source keyed by product id for it, Quix windows group by key), timed the same way
by its group's commits (Quix's default commit interval, 5 s): >= 3x.

Window latency (informational): the product-views job over a live stream (events every 10 ms, event time running
at wall-clock speed, bound 1 s, checkpoints every second): from the moment the stream's event time passes a
window's end to the moment a ``read_committed`` consumer receives the window, against the bound, the earliest a
window can close (the next checkpoint then commits it, within one interval).

``FREIGHTLINE_BENCH_FLINK_EVENTS`` sets each source's size (default 300,000; a few thousand prove the bench
works); ``FREIGHTLINE_BENCH_FLINK_JOBS`` the jobs (comma-separated, default all).
``python -m tests.bench.bench_flink`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
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
from tests.bench.rows import row, stack_env
from tests.integration.enricher import support as enricher_support
from tests.integration.flink import oracle
from tests.integration.flink.support import produce_source

EVENTS = 300_000
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


def _taskmanager_cpu_s() -> float:
    """CPU seconds the shared TaskManager's JVM has used (its Prometheus reporter's ``Status.JVM.CPU.Time``, ns)."""
    port = StackSettings().flink_taskmanager_metrics_port
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith("flink_taskmanager_Status_JVM_CPU_Time{"):
            return float(line.rsplit(" ", 1)[1]) / 1e9
    raise RuntimeError("the TaskManager's reporter has no flink_taskmanager_Status_JVM_CPU_Time")


def _timed_by_commits(group: str, source: str, events: int, client: dict[str, str], cpu: bool) -> dict[str, float]:
    """Wait until ``group`` has committed all of ``source``: the first commit of some of it and the last, as
    ``{"started", "first", "lag", "done"}`` (times, the lag at the first) plus the TaskManager's CPU seconds at
    both ends."""
    timing: dict[str, float] = {"started": time.time()}

    def read() -> bool:
        lag = group_lag(client, group, [source])
        if lag < events and "first" not in timing:
            timing.update(first=time.time(), lag=lag, cpu_first=_taskmanager_cpu_s() if cpu else 0.0)
        return lag == 0

    if not wait_until(read, TIMEOUT_S, 0.2):
        raise RuntimeError(f"the group {group} did not commit {source} within {TIMEOUT_S} s")
    timing.update(done=time.time(), cpu_done=_taskmanager_cpu_s() if cpu else 0.0)
    return timing


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
        f"{prefix}CHECKPOINT_INTERVAL_MS": "1000",
    }


def _drop_table(env: dict[str, str], table: str) -> None:
    with psycopg.connect(env["POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}".encode())


def _flink_rate(ctx: StackContext, env: dict[str, str], name: str, source: str, events: int) -> dict[str, float]:
    """Events/s of job ``name`` over ``source`` (``rate``), its events per TaskManager CPU second (``per_core``)
    and how many other jobs ran on the cluster meanwhile (``others``)."""
    run = uuid.uuid4().hex[:8]
    settings = _job_settings(name, run, source, env)
    prefix = flink_jobs.job(name).settings_prefix
    rest_url = env["FLINK_REST_URL"]
    job_id = flink_jobs.submit(ctx, name, rest_url, {**env, **settings})
    client = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    try:
        timing = _timed_by_commits(settings[f"{prefix}GROUP_ID"], source, events, client, cpu=True)
        running_ms = flink_jobs.job_details(rest_url, job_id)["timestamps"]["RUNNING"]
        jobs = httpx.get(f"{rest_url}/jobs/overview", timeout=10).json()["jobs"]
        others = sum(1 for job in jobs if job["state"] == "RUNNING" and job["jid"] != job_id)
    finally:
        flink_jobs.cancel(rest_url, job_id)
        _drop_table(env, settings[f"{prefix}POSTGRES_TABLE"])
    if timing["lag"] > 0 and timing["done"] > timing["first"]:  # between two checkpoints' commits
        rate, counted, cpu = (
            timing["lag"] / (timing["done"] - timing["first"]),
            timing["lag"],
            timing["cpu_done"] - timing["cpu_first"],
        )
    else:  # all read by the first checkpoint: start-up included, CPU of that last interval only
        rate, counted, cpu = events / (timing["done"] - running_ms / 1000), events, 0.0
    return {"rate": rate, "per_core": counted / cpu if cpu > 0 else 0.0, "others": float(others)}


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
        timing = _timed_by_commits(group, source, events, client, cpu=False)
    finally:
        code = enricher_support.stop(process)
    if code not in (0, -15):
        raise RuntimeError(f"the Quix Streams application exited {code}: see {work / 'quix.log'}")
    if timing["lag"] > 0 and timing["done"] > timing["first"]:
        return timing["lag"] / (timing["done"] - timing["first"])
    return events / (timing["done"] - timing["started"])  # all read by its first commit: start-up included


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
    consumer receives that window from the product-views job (bound 1 s, checkpoints every second)."""
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
        note = f"{events:,} events, parallelism 1, timed between checkpoints' offset commits"
        if flink["others"]:
            note += f"; {flink['others']:.0f} other jobs ran on the cluster meanwhile"
        rows.append(
            row(
                f"flink_{name}_events_per_s",
                flink["rate"],
                "events/s",
                "Kafka's ConsumerPerformance (kafka-consumer-perf-test) fetch rate over the same topic",
                broker,
                BROKER_GOAL,
                note=note,
            )
        )
        rows.append(
            row(
                f"flink_{name}_events_per_s_per_core",
                flink["per_core"],
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
                    flink["rate"],
                    "events/s",
                    "the same aggregation with Quix Streams 3.28.1 (one process, defaults), timed by its commits",
                    quix,
                    QUIX_GOAL,
                    note=note,
                )
            )
    latency = _window_latency_s(ctx, env)
    rows.append(
        row(
            "flink_product_views_window_latency_s",
            latency,
            "s",
            "the out-of-orderness bound (1 s): the earliest a window can close",
            1.0,
            None,
            note="window end (event time, running at wall-clock speed) to the window read by a read_committed consumer",
        )
    )
    return rows


if __name__ == "__main__":
    json.dump(run(stack_env()), sys.stdout, indent=2)
    sys.stdout.write("\n")
