"""The Spark daily job (``daily_aggregates``) over 1 and 5 million generated events, against Polars doing the same
aggregation over the same files in the same run.

The lake files are written directly from the generator's engine (landing millions of events through Kafka and the
sinks would take far longer than the job): the first N events of the six lake families of one seed from the start
of a day (5 million fit in about five hours of simulated time), one Avro container file per family and hour in the
sinks' layout (``<root>/<topic>/dt=D/hour=HH/``), on the local filesystem (``HDFS_NAMENODE_URI=file://``: the job
reads Hadoop paths, HDFS or a local folder is the same code) for the HDFS families, and the same bytes uploaded to
a bucket of the stack's GCS emulator for the finance ones (the job reads them with the GCS connector). Both sizes
are written in one pass (the 1-million lake holds the first million of the 5-million one).

Rows (the job's wall time: its own Spark application, JVM start-up included, into a private PostgreSQL database
and local Parquet):

* seconds per million events at 1M and at 5M, against Polars (``tests/bench/polars_daily.py``, run in the Spark
  environment: reading the same files with its Avro reader, the seven tables with the same definitions);
* the scaling: 5M's time against 1M's, goal <= 5.5x;
* peak driver memory (the proportional set sizes of the job's process tree summed, polled every 0.2 s: in
  ``local[2]`` the driver JVM runs the tasks too), goal <= 2 GiB.

The Polars tables' row counts and totals are checked against Spark's before any figure is reported.
``FREIGHTLINE_BENCH_SPARK_EVENTS`` (default ``1000000,5000000``; a few tens of thousands prove the bench works).
``python -m tests.bench.bench_spark`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import fastavro
import psutil
import psycopg

from batch_spark.contract import GCS, LAKE_TOPICS, family
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.settings import StackSettings
from deploy.spark import SPARK_PYTHON, run_job
from schemas.catalogue import load_catalogue, load_schema
from services.common.settings import GcsSettings
from services.generator.engine import Engine
from services.generator.settings import GeneratorSettings
from services.sink_gcs.store import gcs_client
from tests.bench.rows import row, stack_env
from tests.integration.batch_spark.support import GENERATED, private_database

SIZES = (1_000_000, 5_000_000)
SEED = 14
DAY = dt.date(2026, 11, 3)
SCALING_GOAL = 5.5
MEMORY_GOAL_GIB = 2.0
GIB = 1024**3
BLOCK_BYTES = 1 << 20  # Avro block size (the sinks write blocks of 10,000 records)


def sizes() -> tuple[int, ...]:
    configured = os.environ.get("FREIGHTLINE_BENCH_SPARK_EVENTS")
    return tuple(int(n) for n in configured.split(",")) if configured else SIZES


class Lakes:
    """One lake root per size, written in one pass over the engine's events (each file a fastavro writer)."""

    def __init__(self, work: Path, counts: tuple[int, ...]) -> None:
        self.work, self.counts = work, counts
        catalogue = load_catalogue()
        self.schemas = {
            fam: fastavro.parse_schema(load_schema(catalogue.topic(topic).value_schema))
            for fam, topic in LAKE_TOPICS.items()
        }
        self.files: dict[tuple[int, str, int], tuple[BinaryIO, Any]] = {}
        self.events: dict[int, int] = dict.fromkeys(counts, 0)

    def root(self, size: int) -> Path:
        return self.work / f"lake-{size}"

    def path(self, size: int, fam: str, hour: int) -> Path:
        return self.root(size) / LAKE_TOPICS[fam] / f"dt={DAY}" / f"hour={hour:02d}" / f"{LAKE_TOPICS[fam]}+0.avro"

    def _writer(self, size: int, fam: str, hour: int) -> Any:
        key = (size, fam, hour)
        if key not in self.files:
            path = self.path(size, fam, hour)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("wb")
            self.files[key] = (handle, fastavro.write.Writer(handle, self.schemas[fam], sync_interval=BLOCK_BYTES))
        return self.files[key][1]

    def write(self) -> None:
        settings = GeneratorSettings(seed=SEED, start_time=dt.datetime.combine(DAY, dt.time(), dt.UTC))
        engine = Engine(settings.engine_config())
        family_of = {topic: fam for fam, topic in GENERATED.items()}
        largest, written = max(self.counts), 0
        while written < largest:
            for item in engine.take(20_000):
                fam = family_of.get(item.topic)
                if fam is None or written >= largest:
                    continue
                at = dt.datetime.fromtimestamp(item.event_time_ms / 1000, dt.UTC)
                if at.date() != DAY:
                    raise RuntimeError(f"{written:,} events do not fit in {DAY}")
                for size in self.counts:
                    if written < size:
                        self._writer(size, fam, at.hour).write(item.value)
                        self.events[size] += 1
                written += 1
        for handle, writer in self.files.values():
            writer.flush()
            handle.close()

    def upload_finance(self, env: dict[str, str], bucket: str) -> None:
        """The finance families' files into ``bucket`` (``raw/<topic>/dt=/hour=/``), as the GCS sink lays them."""
        client = gcs_client(GcsSettings.from_mapping(env))
        target = client.create_bucket(bucket)
        for (size, fam, hour), _ in self.files.items():
            if family(fam).store == GCS:
                path = self.path(size, fam, hour)
                target.blob(f"{size}/raw/{path.relative_to(self.root(size))}").upload_from_filename(str(path))


class PeakMemory:
    """The largest memory of this process's children (recursively) while running, polled: the sum of their
    proportional set sizes (a page shared by n processes counts 1/n to each). Summing resident sizes would count
    the driver JVM twice whenever it forks a shell command, whose resident pages are, until it executes, the
    JVM's own."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s, self.peak = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_full_info().pss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _spark(env: dict[str, str], lakes: Lakes, size: int, bucket: str, dsn: str, log: Path) -> tuple[float, int, Any]:
    job_env = {
        **env,
        "HDFS_NAMENODE_URI": "file://",
        "SPARK_JOBS_LAKE_ROOT": str(lakes.root(size)),
        "SPARK_JOBS_ANALYTICS_ROOT": str(lakes.work / f"analytics-{size}"),
        "SPARK_JOBS_GCS_PREFIX": f"{size}/raw",
        "GCS_BUCKET": bucket,
        "POSTGRES_DSN": dsn,
    }
    paths = StackContext.create(StackSettings()).paths
    with PeakMemory() as memory:
        started = time.monotonic()
        report = run_job("daily", paths, job_env, log, ds=DAY)
        elapsed = time.monotonic() - started
    return elapsed, memory.peak, report


def _polars(lakes: Lakes, size: int) -> dict[str, Any]:
    config = lakes.work / f"polars-{size}.json"
    config.write_text(json.dumps({"root": str(lakes.root(size)), "day": str(DAY), "families": LAKE_TOPICS}))
    started = time.monotonic()
    done = subprocess.run(
        [str(SPARK_PYTHON), str(REPO_ROOT / "tests" / "bench" / "polars_daily.py"), str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Polars peer exited {done.returncode}: {done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = time.monotonic() - started  # process start and imports included, like Spark's
    return figures


def _check(dsn: str, report: dict[str, Any], peer: dict[str, Any], size: int) -> None:
    """Polars computed the tables Spark wrote: rows per table and the tables' totals."""
    written = report["days"][str(DAY)]["rows_written"]
    spark_rows = {table.split(".", 1)[1]: count for table, count in written.items()}
    if spark_rows != peer["rows"]:
        raise RuntimeError(f"{size:,} events: Spark wrote {spark_rows}, Polars computed {peer['rows']}")
    with psycopg.connect(dsn) as conn:
        row_ = conn.execute(
            "SELECT (SELECT sum(view_count) FROM analytics.product_views_daily),"
            " (SELECT sum(delivered_count) FROM analytics.shipment_on_time_daily),"
            " (SELECT sum(on_time_count) FROM analytics.shipment_on_time_daily),"
            " (SELECT sum(order_count) FROM analytics.order_revenue_daily)"
        ).fetchone()
    totals = dict(zip(("views", "delivered", "on_time", "orders"), map(int, row_ or ()), strict=True))
    if totals != {name: peer[name] for name in totals}:
        raise RuntimeError(f"{size:,} events: Spark's totals {totals} differ from Polars' {peer}")


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    counts = sizes()
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        lakes = Lakes(Path(tmp), counts)
        started = time.monotonic()
        lakes.write()
        bucket = f"bench-spark-{uuid.uuid4().hex[:8]}"
        lakes.upload_finance(env, bucket)
        print(f"lakes written in {time.monotonic() - started:.0f}s: {lakes.events}", file=sys.stderr)
        results: dict[int, tuple[float, int, dict[str, Any]]] = {}
        try:
            for size in counts:
                with private_database(env["POSTGRES_DSN"]) as dsn:
                    elapsed, peak, report = _spark(env, lakes, size, bucket, dsn, Path(tmp) / "spark.log")
                    peer = _polars(lakes, size)
                    _check(dsn, report, peer, size)
                results[size] = (elapsed, peak, peer)
                print(f"{size:,}: spark {elapsed:.1f}s, peak {peak / GIB:.2f} GiB; polars {peer}", file=sys.stderr)
        finally:
            client = gcs_client(GcsSettings.from_mapping(env))
            for blob in client.list_blobs(bucket):
                blob.delete()
            client.bucket(bucket).delete()
    rows = []
    for size, (elapsed, _peak, peer) in results.items():
        millions = lakes.events[size] / 1e6
        rows.append(
            row(
                f"spark daily job, {size / 1e6:g}M events: seconds per million",
                elapsed / millions,
                "s/M",
                "Polars, same files and tables",
                peer["wall_s"] / millions,
                None,
                goal_op="<=",
                note=f"Polars in-process compute {peer['seconds']:.1f}s of {peer['wall_s']:.1f}s",
            )
        )
    small, large = min(counts), max(counts)
    rows.append(
        row(
            f"spark daily job time, {large / 1e6:g}M against {small / 1e6:g}M events",
            results[large][0],
            "s",
            f"{small / 1e6:g}M events",
            results[small][0],
            SCALING_GOAL,
            goal_op="<=",
            note=f"{large // small}x the events",
        )
    )
    peak = max(result[1] for result in results.values())
    rows.append(
        row(
            "spark daily job, peak driver memory (proportional set size, local[2])",
            peak / GIB,
            "GiB",
            "goal",
            MEMORY_GOAL_GIB,
            1.0,
            goal_op="<=",
        )
    )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(stack_env()), indent=2))
