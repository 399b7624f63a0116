"""The main job: the whole pipeline on the embedded local stack, ending in a report.

Stages run in order against the stack's endpoints; each returns the rows it contributes to the report. The
stack is started when it is not running and stopped at the end when the job started it.
"""

from __future__ import annotations

import copy
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.local.context import StackContext
from deploy.local.stack import Stack, StackError
from services.common.settings import KafkaSettings, SchemaRegistrySettings, StackSettings

console = Console(stderr=True)
out = Console(width=140)


@dataclass
class Report:
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, section: str, key: str, value: Any) -> None:
        self.sections.setdefault(section, []).append((key, str(value)))

    def render(self, console: Console) -> None:
        for section, rows in self.sections.items():
            table = Table(title=section, title_justify="left")
            table.add_column("item")
            table.add_column("value", overflow="fold")
            for key, value in rows:
                table.add_row(escape(key), escape(value))
            console.print(table)
        if self.problems:
            console.print("[bold red]problems:[/bold red]")
            for problem in self.problems:
                console.print(f"  - {problem}")
        else:
            console.print("[bold green]pipeline completed: every count matched[/bold green]")


@dataclass
class RunContext:
    env: dict[str, str]
    stack: Stack
    report: Report
    run_id: str
    events: int
    seed: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.stack.ctx.paths.logs / f"run-{name}.log"

    def local(self) -> dict[str, str]:
        from deploy.processes import local_client_config

        return local_client_config(self.env)

    def remote(self) -> dict[str, str]:
        from deploy.processes import remote_client_config

        return remote_client_config(self.env)


Stage = Callable[[RunContext], None]


def _step(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def stage_components(ctx: RunContext) -> None:
    for row in ctx.stack.status():
        ports = ", ".join(f"{role}={port}" for role, port in row.ports.items())
        ctx.report.add("Components", row.name, f"{row.state.lower()} (pid {row.pid}, {ports})")
        if not row.ready:
            ctx.report.problems.append(f"{row.name} is not ready")
    for key, value in ctx.env.items():
        ctx.report.add("Endpoints", key, "***" if "PASSWORD" in key else value)


def stage_register_schemas(ctx: RunContext) -> None:
    from schemas.catalogue import load_catalogue
    from schemas.governance.register import register_all
    from services.common.serde import registry_client

    _step("registering the Avro contracts on the Schema Registry")
    client = registry_client(SchemaRegistrySettings(url=ctx.env["SCHEMA_REGISTRY_URL"]))
    results = register_all(client, load_catalogue())
    ctx.report.add("Contracts", "subjects registered", len(results))
    ids = sorted({r.schema_id for r in results})
    ctx.report.add("Contracts", "distinct schema ids", len(ids))


def stage_smoke(ctx: RunContext) -> None:
    """Product views through the shared producer, consumer loop and serde; latency event time -> consumed."""
    from confluent_kafka import Message

    from schemas.catalogue import example, load_schema
    from services.common.kafka import ConsumerLoop, Producer, consumer_config, ensure_topics, producer_config
    from services.common.lifecycle import Shutdown
    from services.common.serde import AvroSerde, registry_client, subject_for

    kafka = KafkaSettings(bootstrap_servers=ctx.env["KAFKA_BOOTSTRAP_SERVERS"])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=ctx.env["SCHEMA_REGISTRY_URL"])))
    topic = f"smoke.product_views.{ctx.run_id}"
    ensure_topics(kafka.client_config(), [(topic, 3, {"retention.ms": "3600000"})])
    n = ctx.events
    _step(f"shared-library pipeline: {n:,} product views through {topic}")
    encoder = serde.encoder(subject_for(topic), load_schema("com.freightline.web.ProductView"))
    producer = Producer(producer_config(kafka, "main-job"))
    base = example("com.freightline.web.ProductView")
    started = time.monotonic()
    for i in range(n):
        record = copy.deepcopy(base)
        now = int(time.time() * 1000)
        record["metadata"].update(event_id=str(uuid.uuid4()), event_time=now, ingest_time=now)
        record["product_id"] = f"P-{i % 500:05d}"
        producer.produce(topic, encoder.encode(record), record["product_id"])
    producer.flush()
    produced_s = time.monotonic() - started

    latencies: list[float] = []
    seen: set[str] = set()
    shutdown = Shutdown()

    def handle(batch: list[Message]) -> None:
        now_ms = time.time() * 1000
        for message in batch:
            record = serde.decode(message.value())
            seen.add(str(record["metadata"]["event_id"]))
            latencies.append(now_ms - record["metadata"]["event_time"].timestamp() * 1000)
        if len(seen) >= n:
            shutdown.request("all consumed")

    group = f"main-job-{ctx.run_id}"
    loop = ConsumerLoop(consumer_config(kafka, group, "main-job"), [topic], handle, shutdown=shutdown)
    watchdog = threading.Timer(120, shutdown.request, args=("timed out",))
    watchdog.daemon = True
    watchdog.start()
    try:
        loop.run()
    finally:
        watchdog.cancel()
    section = "Shared-library pipeline (product views)"
    ctx.report.add(section, "produced (acknowledged)", f"{producer.delivered:,} in {produced_s:.1f}s")
    ctx.report.add(section, "consumed and committed", f"{loop.processed:,} ({len(seen):,} distinct)")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        ctx.report.add(section, "latency event time -> consumed", f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms")
    if len(seen) != n or producer.delivered != n:
        ctx.report.problems.append(f"smoke pipeline: produced {producer.delivered}, consumed {len(seen)} of {n}")


LABELS, ANOMALIES = "analytics.anomaly_labels.v1", "analytics.anomalies.v1"
PRODUCT_VIEWS_REMOTE = "product_views"
PRODUCT_VIEWS_LOCAL = "web.product_views.v1"
MIRROR_GROUP = "freightline-mirror"


def stage_generate(ctx: RunContext) -> None:
    """The seeded world: every event family, product views to the remote cluster, the rest locally."""
    from deploy.processes import ServiceProcess, last_json_line
    from services.common.kafka import end_positions

    # Where this run's labels (and the detector's anomalies) begin, for scoring this run only.
    ctx.state["score_from"] = end_positions(ctx.env, [LABELS, ANOMALIES])
    _step(f"generator: {ctx.events:,} events, seed {ctx.seed}")
    generator = ServiceProcess(
        "services.generator",
        ctx.env,
        ctx.log("generator"),
        "--events",
        str(ctx.events),
        "--no-pace",
        "--seed",
        str(ctx.seed),
    ).start()
    code, stdout = generator.wait(timeout=900)
    if code != 0:
        raise RuntimeError(f"generator exited {code}; see {ctx.log('generator')}")
    summary = last_json_line(stdout)
    ctx.state["produced"] = summary["topics"]
    section = "Generator (this run)"
    for topic, count in sorted(summary["topics"].items()):
        ctx.report.add(section, topic, f"{count:,}")
    rate = summary.get("records_per_s")
    ctx.report.add(section, "records, time", f"{summary['records']:,} in {summary['elapsed_s']:.1f}s ({rate:,.0f}/s)")
    injected = summary.get("anomalies_injected", {})
    ctx.report.add(section, "anomalies injected", ", ".join(f"{k}={v}" for k, v in sorted(injected.items())) or "0")
    ctx.state["anomalies_injected"] = injected


def stage_mirror(ctx: RunContext) -> None:
    """Remote product views into the local cluster, registry-aware, committed after the local ack."""
    from deploy.processes import ServiceProcess, end_offsets, group_lag, wait_until

    expected = int(ctx.state.get("produced", {}).get(PRODUCT_VIEWS_REMOTE, 0))
    before = end_offsets(ctx.local(), [PRODUCT_VIEWS_LOCAL])[PRODUCT_VIEWS_LOCAL]
    lag_before = group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE])
    _step(f"mirror: {PRODUCT_VIEWS_REMOTE} (remote, SASL) -> {PRODUCT_VIEWS_LOCAL}, {lag_before:,} records behind")
    mirror = ServiceProcess("services.mirror", ctx.env, ctx.log("mirror"), MIRROR_GROUP_ID=MIRROR_GROUP).start()
    started = time.monotonic()
    try:
        caught_up = wait_until(lambda: group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE]) == 0, 600, 1.0)
        elapsed = time.monotonic() - started
    finally:
        code = mirror.stop()
    mirrored = end_offsets(ctx.local(), [PRODUCT_VIEWS_LOCAL])[PRODUCT_VIEWS_LOCAL] - before
    lag = group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE])
    ctx.state["mirrored"] = mirrored
    section = "Mirror (remote -> local)"
    ctx.report.add(section, "produced upstream this run", f"{expected:,}")
    ctx.report.add(section, "mirrored this run", f"{mirrored:,} in {elapsed:.1f}s (incl. start-up)")
    ctx.report.add(section, "mirror lag after the run", f"{lag:,} records")
    ctx.report.add(section, "exit on SIGTERM", code)
    if not caught_up or lag != 0:
        ctx.report.problems.append(f"mirror did not catch up: lag {lag}")
    if mirrored < lag_before:
        ctx.report.problems.append(f"mirror copied {mirrored} of {lag_before} pending records")
    if code != 0:
        ctx.report.problems.append(f"mirror exited {code} on SIGTERM; see {ctx.log('mirror')}")


def stage_enrich_detect(ctx: RunContext) -> None:
    """The Faust enricher and the anomaly detector side by side until both have committed everything pending."""
    from deploy.processes import ServiceProcess, end_offsets, group_lag, wait_until
    from services.anomaly_detector.score import score
    from services.anomaly_detector.settings import INPUT_TOPICS, DetectorSettings
    from services.common.kafka import end_positions
    from services.enricher.inspect import summary
    from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS, EnricherSettings

    enricher, detector = EnricherSettings(), DetectorSettings()
    sources, outputs = list(SOURCE_TOPICS.values()), list(OUTPUT_TOPICS.values())
    detected_topics = list(INPUT_TOPICS)
    pending = group_lag(ctx.local(), enricher.app_id, sources)
    start = {**end_positions(ctx.env, outputs), **ctx.state.get("score_from", {})}
    before = end_offsets(ctx.local(), outputs)
    _step(f"enricher (Faust) and anomaly detector: {pending:,} events to enrich")
    processes = {
        "enricher": ServiceProcess("services.enricher", ctx.env, ctx.log("enricher")),
        "anomaly detector": ServiceProcess(
            "services.anomaly_detector", ctx.env, ctx.log("anomaly_detector"), ANOMALY_DETECTOR_IDLE_FLUSH_S="2"
        ),
    }
    for process in processes.values():
        process.start()
    started = time.monotonic()
    try:

        def caught_up() -> bool:
            return (
                group_lag(ctx.local(), enricher.app_id, sources) == 0
                and group_lag(ctx.local(), detector.group_id, detected_topics) == 0
            )

        done = wait_until(caught_up, 900, 1.0)
        elapsed = time.monotonic() - started
    finally:
        codes = {name: process.stop() for name, process in processes.items()}  # the detector flushes its windows
    after = end_offsets(ctx.local(), outputs)
    enriched = {topic: after[topic] - before[topic] for topic in outputs}
    found = summary(ctx.env, outputs, start)
    section = "Enrichment (Faust, this run)"
    for topic in outputs:
        ctx.report.add(section, topic, f"{enriched[topic]:,}")
    total = sum(enriched.values())
    ok = total == pending
    ctx.report.add(section, "enriched of pending", f"{total:,} of {pending:,} [{'match' if ok else 'MISMATCH'}]")
    unknown = found["unknown_references"]
    ctx.report.add(section, "unknown references", ", ".join(f"{k}={v:,}" for k, v in unknown.items()) or "0")
    p50, p99 = found["latency_p50_s"], found["latency_p99_s"]
    if p50 is not None and p99 is not None:
        # An unpaced run generates minutes of event time in seconds, ending at generation time: this is the age
        # of the backlog when enriched, not the latency of a paced stream.
        ctx.report.add(section, "event time -> enriched, p50 / p99 (unpaced backlog)", f"{p50:.1f}s / {p99:.1f}s")
    ctx.report.add(section, "time to catch up", f"{elapsed:.1f}s (incl. start-up and table recovery)")
    if not done or not ok:
        ctx.report.problems.append(f"enricher: {total} enriched of {pending} pending")

    result = score(ctx.env, LABELS, ANOMALIES, start=start)
    section = "Anomaly detection (this run)"
    ctx.report.add(section, "injected (labels) / detected", f"{result['labels']:,} / {result['detections']:,}")
    for kind, item in sorted(result["per_type"].items()):
        precision = "-" if item["precision"] is None else f"{item['precision']:.2f}"
        recall = "-" if item["recall"] is None else f"{item['recall']:.2f}"
        ctx.report.add(
            section,
            kind,
            f"injected {item['labels']}, detected {item['detections']}, precision {precision}, recall {recall}",
        )
    for name, code in codes.items():
        if code != 0:
            ctx.report.problems.append(f"{name} exited {code} on SIGTERM; see {processes[name].log}")


def stage_sinks(ctx: RunContext) -> None:
    """Raw views to MongoDB, raw clickstream to HDFS, raw finance events to GCS: counts must match."""
    from deploy.processes import ServiceProcess, group_lag, wait_until
    from services.common.settings import GcsSettings, HdfsSettings, MongoSettings
    from services.sink_gcs import inspect as gcs_inspect
    from services.sink_gcs.settings import GcsSinkSettings
    from services.sink_hdfs import inspect as hdfs_inspect
    from services.sink_hdfs.settings import HdfsSinkSettings
    from services.sink_mongodb import inspect as mongo_inspect
    from services.sink_mongodb.settings import MongoSinkSettings

    env = ctx.env
    mongo = MongoSettings(uri=env["MONGODB_URI"])
    hdfs = HdfsSettings(webhdfs_url=env["HDFS_WEBHDFS_URL"], namenode_uri=env["HDFS_NAMENODE_URI"])
    gcs = GcsSettings(endpoint=env["GCS_ENDPOINT"], bucket=env["GCS_BUCKET"])
    mongo_sink, hdfs_sink, gcs_sink = MongoSinkSettings(), HdfsSinkSettings(), GcsSinkSettings(bucket=gcs.bucket)

    def landed() -> dict[str, dict[str, int]]:
        m = mongo_inspect.summary(mongo_sink, mongo)["collections"]
        h = hdfs_inspect.summary(hdfs_sink, hdfs)["topics"]
        g = gcs_inspect.summary(gcs_sink, gcs)["topics"]
        return {
            "mongodb": {
                "records": sum(c["documents"] for c in m.values()),
                "bytes": sum(c["bytes"] for c in m.values()),
            },
            "hdfs": {
                "records": sum(t["records"] for t in h.values()),
                "files": sum(t["files"] for t in h.values()),
                "bytes": sum(t["bytes"] for t in h.values()),
            },
            "gcs": {
                "records": sum(t["records"] for t in g.values()),
                "files": sum(t["files"] for t in g.values()),
                "bytes": sum(t["bytes"] for t in g.values()),
            },
        }

    sinks = {
        "mongodb": ("services.sink_mongodb", mongo_sink),
        "hdfs": ("services.sink_hdfs", hdfs_sink),
        "gcs": ("services.sink_gcs", gcs_sink),
    }
    # What each sink has to land: every record its consumer group has not committed yet (this run's events
    # plus anything an earlier, interrupted run left behind).
    expected = {name: group_lag(ctx.local(), s.group_id, s.topic_list()) for name, (_, s) in sinks.items()}
    produced = ctx.state.get("produced", {})
    this_run = {
        "mongodb": int(ctx.state.get("mirrored", 0)),
        "hdfs": sum(int(produced.get(t, 0)) for t in hdfs_sink.topic_list()),
        "gcs": sum(int(produced.get(t, 0)) for t in gcs_sink.topic_list()),
    }
    before = landed()
    _step("sinks: MongoDB (views), HDFS (clickstream), GCS (finance), exactly once")
    processes = {
        name: ServiceProcess(module, env, ctx.log(module.rsplit(".", 1)[-1])).start()
        for name, (module, _) in sinks.items()
    }
    started = time.monotonic()
    try:

        def drained() -> bool:
            return all(group_lag(ctx.local(), s.group_id, s.topic_list()) == 0 for _, s in sinks.values())

        wait_until(drained, 900, 1.0)
        elapsed = time.monotonic() - started
    finally:
        codes = {name: process.stop() for name, process in processes.items()}
    after = landed()
    section = "Sinks (this run)"
    targets = {"mongodb": env["MONGODB_URI"], "hdfs": env["HDFS_WEBHDFS_URL"], "gcs": f"gs://{gcs.bucket}"}
    for name in sinks:
        delta = {k: after[name][k] - before[name].get(k, 0) for k in after[name]}
        unit = "documents" if name == "mongodb" else "records"
        files = f", {delta['files']:,} {'files' if name == 'hdfs' else 'objects'}" if "files" in delta else ""
        ok = delta["records"] == expected[name]
        ctx.report.add(
            section,
            f"{name} ({targets[name]})",
            f"{delta['records']:,} {unit} of {expected[name]:,} pending ({this_run[name]:,} from this run){files}, "
            f"{delta['bytes']:,} bytes [{'match' if ok else 'MISMATCH'}]",
        )
        if not ok:
            ctx.report.problems.append(f"{name}: landed {delta['records']} of {expected[name]}")
        if codes[name] != 0:
            ctx.report.problems.append(f"sink {name} exited {codes[name]} on SIGTERM")
    ctx.report.add(section, "time to drain", f"{elapsed:.1f}s (incl. start-up)")


STAGES: list[tuple[str, Stage]] = [
    ("components", stage_components),
    ("contracts", stage_register_schemas),
    ("shared-library pipeline", stage_smoke),
    ("generator", stage_generate),
    ("mirror", stage_mirror),
    ("enrichment and detection", stage_enrich_detect),
    ("sinks", stage_sinks),
]


def execute(
    stack: Stack, env: dict[str, str], events: int, report: Report | None = None, seed: int | None = None
) -> Report:
    """Run every stage against a running stack; failures are recorded in the report, never raised."""
    report = report or Report()
    seed = seed if seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "big")
    ctx = RunContext(env=env, stack=stack, report=report, run_id=uuid.uuid4().hex[:8], events=events, seed=seed)
    for name, stage in STAGES:
        _step(f"stage: {name}")
        try:
            stage(ctx)
        except Exception as error:  # the report names the failed stage; the job exits non-zero
            report.problems.append(f"stage {name} failed: {type(error).__name__}: {error}")
            console.print_exception()
            break
    return report


def run(
    events: Annotated[int, typer.Option(help="Events to generate.")] = 100_000,
    keep_stack: Annotated[bool, typer.Option(help="Leave the stack running afterwards.")] = False,
    seed: Annotated[int | None, typer.Option(help="Generator seed (default: a new one per run).")] = None,
) -> None:
    """Run the whole pipeline on the local stack and print a report."""
    stack = Stack(StackContext.create(StackSettings()))
    was_running = stack.supervisor.running()
    report = Report()
    started = time.monotonic()
    try:
        _step("starting the local stack")
        env = stack.up(progress=_step)
        execute(stack, env, events, report, seed)
    except StackError as error:
        report.problems.append(str(error))
    finally:
        if not was_running and not keep_stack:
            _step("stopping the local stack")
            stack.down(progress=_step)
    report.add("Run", "duration", f"{time.monotonic() - started:.0f}s")
    report.render(out)
    if report.problems:
        raise typer.Exit(code=1)
