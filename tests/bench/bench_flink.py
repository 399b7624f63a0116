"""Events/s through the Flink product-views job on the stack's cluster, against the broker's own consumer
performance tool reading the same topic.

The source is a topic of ``EVENTS`` product views (3 partitions). The job (parallelism 1, checkpoints every second,
its own topics, table and group) is timed by its consumer group, whose offsets Flink commits at checkpoints: from the
first commit of some of the source to the commit of all of it (the records read in between over that time), so
task start-up is excluded; a source read whole before the first checkpoint is timed from the moment the cluster
reports the job RUNNING instead (start-up included: only a large source makes the figure a rate). The baseline is
Kafka's ``org.apache.kafka.tools.ConsumerPerformance`` (the class behind ``kafka-consumer-perf-test``, the brokers'
version, from the ``kafka-tools`` runtime of the stack's jars) over the same topic, its fetch rate (group join
excluded).
Goal: >= 0.3x the broker's raw consume rate.

``FREIGHTLINE_BENCH_FLINK_EVENTS`` sets the source size (default 1,000,000; a few thousand prove the bench works).
``python -m tests.bench.bench_flink`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg

from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.local.jars import classpath
from deploy.local.settings import StackSettings
from deploy.processes import group_lag, wait_until
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from stream_processors.product_views import JOB
from tests.bench.rows import row, stack_env
from tests.integration.flink.oracle import product_views_events
from tests.integration.flink.support import produce_source

EVENTS = 1_000_000
PARTITIONS = 3
GOAL_RATIO = 0.3
TIMEOUT_S = 1800  # hang guard


def _flink_rate(ctx: StackContext, env: dict[str, str], source: str, events: int) -> float:
    """Events/s of the product-views job over ``source``, from RUNNING to its group committing the whole source."""
    run = uuid.uuid4().hex[:8]
    sink, late = f"bench-flink-agg-{run}", f"bench-flink-late-{run}"
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(sink, 3, {}), (late, 1, {})])
    group = f"bench-flink-{run}"
    settings = {
        "PRODUCT_VIEWS_JOB_SOURCE_TOPIC": source,
        "PRODUCT_VIEWS_JOB_SINK_TOPIC": sink,
        "PRODUCT_VIEWS_JOB_LATE_TOPIC": late,
        "PRODUCT_VIEWS_JOB_POSTGRES_TABLE": f"streaming.bench_{run}",
        "PRODUCT_VIEWS_JOB_GROUP_ID": group,
        "PRODUCT_VIEWS_JOB_CHECKPOINT_INTERVAL_MS": "1000",
    }
    rest_url = env["FLINK_REST_URL"]
    job_id = flink_jobs.submit(ctx, "product_views", rest_url, {**env, **settings})
    client = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    progress: list[tuple[float, int]] = []  # (time, lag) at the first commit after the start and at the end

    def read() -> bool:
        lag = group_lag(client, group, [source])
        if lag < events and not progress:
            progress.append((time.time(), lag))
        return lag == 0

    try:
        if not wait_until(read, TIMEOUT_S, 0.2):
            raise RuntimeError(f"the job {job_id} did not read {source} within {TIMEOUT_S} s")
        done = time.time()
        running_ms = flink_jobs.job_details(rest_url, job_id)["timestamps"]["RUNNING"]
    finally:
        flink_jobs.cancel(rest_url, job_id)
        with psycopg.connect(env["POSTGRES_DSN"], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {settings['PRODUCT_VIEWS_JOB_POSTGRES_TABLE']}".encode())
    first, lag = progress[0]
    if lag > 0 and done > first:  # between two checkpoints' commits: start-up excluded
        return lag / (done - first)
    return events / (done - running_ms / 1000)  # all read by the first checkpoint: start-up included


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


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    events = int(env.get("FREIGHTLINE_BENCH_FLINK_EVENTS", EVENTS))
    ctx = StackContext.create(StackSettings())
    source = f"bench-flink-src-{uuid.uuid4().hex[:8]}"
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), [(source, PARTITIONS, {})])
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    produce_source(env, JOB, source, product_views_events(7, events, start, dt.timedelta(seconds=30)))
    broker = _broker_rate(ctx, env, source, events)  # first: it also warms the brokers' cache for both
    flink = _flink_rate(ctx, env, source, events)
    return [
        row(
            "flink_product_views_events_per_s",
            flink,
            "events/s",
            "Kafka's ConsumerPerformance (kafka-consumer-perf-test) fetch rate over the same topic",
            broker,
            GOAL_RATIO,
            note=f"{events:,} events, parallelism 1, timed between checkpoints' offset commits",
        )
    ]


if __name__ == "__main__":
    json.dump(run(stack_env()), sys.stdout, indent=2)
    sys.stdout.write("\n")
