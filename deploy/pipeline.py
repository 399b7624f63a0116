"""The main job: the whole pipeline on the embedded local stack, ending in a report.

Stages run in order against the stack's endpoints; each returns the rows it contributes to the report. The
stack is started when it is not running and stopped at the end when the job started it.
"""

from __future__ import annotations

import copy
import importlib
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.airflow_stage import stage_daily, stage_dbt
from deploy.batch_stage import BatchFigures
from deploy.dbt_stage import DbtFigures
from deploy.local.components import service_kafka_env
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack, StackError, shown
from deploy.observability_stage import MonitoringFigures, stage_monitoring
from deploy.stream_stage import WindowJobFigures, source_positions, stage_stream
from schemas import topics
from services.common.settings import KafkaSettings, SchemaRegistrySettings

if TYPE_CHECKING:
    from deploy.processes import ServiceProcess
    from services.common.sinks.inspect import SinkInspector

console = Console(stderr=True)
out = Console(width=140)


@dataclass
class Figures:
    """What the stages counted, as data: the report renders them for people, tests read them from here.

    Topic-keyed counts use the catalogue's topic names; ``generated`` keys the generator's summary (remote product
    views under their remote name). Each count covers this run's offset range (or, for sinks, what landed since
    the stage's mark) only.
    """

    smoke_consumed: int = 0  # distinct event ids the shared-library pipeline consumed
    generated: dict[str, int] = field(default_factory=dict)  # records per topic, from the generator's summary
    injected: dict[str, int] = field(default_factory=dict)  # anomalies injected per type
    leftover: dict[str, int] = field(default_factory=dict)  # per stage: what an earlier run left uncommitted
    mirrored: int = 0  # records the mirror appended to the local product views
    mirrored_distinct: int = 0  # distinct event ids among them
    enriched: dict[str, int] = field(default_factory=dict)  # records per enriched topic
    enriched_distinct: dict[str, int] = field(default_factory=dict)  # distinct source events per enriched topic
    enriched_duplicates: dict[str, int] = field(default_factory=dict)  # repeated enriched event ids per topic
    landed: dict[str, int] = field(default_factory=dict)  # records (documents) landed per sink
    sink_topics: dict[str, list[str]] = field(default_factory=dict)  # what each sink consumes
    detection: dict[str, dict[str, Any]] = field(default_factory=dict)  # the scorer's per-type result
    stream: dict[str, WindowJobFigures] = field(default_factory=dict)  # per Flink window job (deploy/stream_stage.py)
    batch: BatchFigures | None = None  # the daily batch of the run's days, through Airflow (deploy/batch_stage.py)
    dbt: DbtFigures | None = None  # dbt_build's results, freshness and headline figures (deploy/dbt_stage.py)
    monitoring: MonitoringFigures | None = None  # what Prometheus saw of the run (deploy/observability_stage.py)


@dataclass
class Report:
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)

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
    start: str = ""  # the generator's --start (ISO time): with the seed, it reproduces the run's events
    score_from: dict[str, dict[int, int]] = field(default_factory=dict)  # labels/anomalies offsets before the run
    stream_from: dict[str, dict[int, int]] = field(default_factory=dict)  # window jobs' sources before the run
    started_at: float = field(default_factory=time.time)  # unix seconds: the start of the run's monitoring window

    @property
    def figures(self) -> Figures:
        """What the stages counted so far (the later stages' expectations come from the earlier ones')."""
        return self.report.figures

    @property
    def seed_start(self) -> str:
        return f"--seed {self.seed}" + (f" --start {self.start}" if self.start else "")

    def log(self, name: str) -> Path:
        return self.stack.ctx.paths.logs / f"run-{name}.log"

    def service_env(self, module: str) -> dict[str, str]:
        """The environment of ``module`` (a service, ``services.<name>``, or ``stream``, the Flink jobs): the stack's
        endpoints; on a secure stack the Kafka credentials of its own principal (``deploy/local/kafka_acls.py``)
        instead of the admin's. A service also gets the registry's read-only user: the contracts stage registers every
        catalogue subject (each topic and dead-letter topic the services write) as the admin first, so the services
        only look schemas up. The Flink jobs keep the admin (Flink's Avro format registers the schema it writes)."""
        from deploy.processes import read_only_registry

        env = {**self.env, **service_kafka_env(self.stack.ctx, module.rsplit(".", 1)[-1])}
        if module.startswith("services."):
            env.update(read_only_registry(self.env))
        return env

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
        ctx.report.add("Endpoints", key, shown(key, value))


def stage_register_schemas(ctx: RunContext) -> None:
    from schemas.catalogue import load_catalogue
    from schemas.governance.register import register_all
    from services.common.serde import registry_client

    _step("registering the Avro contracts on the Schema Registry")
    client = registry_client(SchemaRegistrySettings.from_mapping(ctx.env))
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

    kafka = KafkaSettings.from_mapping(ctx.env)
    serde = AvroSerde(registry_client(SchemaRegistrySettings.from_mapping(ctx.env)))
    topic = f"smoke.product_views.{ctx.run_id}"
    ensure_topics(kafka, [(topic, 3, {"retention.ms": "3600000"})])
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
    ctx.report.figures.smoke_consumed = len(seen)
    if len(seen) != n or producer.delivered != n:
        ctx.report.problems.append(f"smoke pipeline: produced {producer.delivered}, consumed {len(seen)} of {n}")


LABELS, ANOMALIES = topics.ANOMALY_LABELS, topics.ANOMALIES
PRODUCT_VIEWS_REMOTE = topics.UPSTREAM_PRODUCT_VIEWS
PRODUCT_VIEWS_LOCAL = topics.PRODUCT_VIEWS
MIRROR_GROUP = "freightline-mirror"


def _consumer_lags(ctx: RunContext) -> dict[str, Callable[[], int]]:
    """Each consuming stage's uncommitted records, as a probe to call now or later."""
    from deploy.processes import group_lag
    from services.enricher.settings import SOURCE_TOPICS, EnricherSettings

    enricher = EnricherSettings()
    probes: dict[str, Callable[[], int]] = {
        "mirror": lambda: group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE]),
        "enricher": lambda: group_lag(ctx.local(), enricher.app_id, list(SOURCE_TOPICS.values())),
    }
    for name, inspector in _inspectors(ctx).items():
        probes[name] = partial(group_lag, ctx.local(), inspector.settings.group_id, inspector.settings.topic_list())
    return probes


def _produced_this_run(ctx: RunContext, topics: list[str]) -> int:
    """This run's records on local ``topics``: the generator's counts, and the mirror's for mirrored views."""
    generated = ctx.figures.generated
    return sum(ctx.figures.mirrored if topic == PRODUCT_VIEWS_LOCAL else generated.get(topic, 0) for topic in topics)


def _expected(ctx: RunContext, stage: str, this_run: int) -> int:
    """This run's records for a stage plus what an earlier run left uncommitted there."""
    return this_run + ctx.figures.leftover.get(stage, 0)


def _expectation(ctx: RunContext, stage: str, this_run: int) -> str:
    left = ctx.figures.leftover.get(stage, 0)
    return f"{this_run:,} from this run" + (f" + {left:,} left by an earlier run" if left else "")


def stage_generate(ctx: RunContext) -> None:
    """The seeded world: every event family, product views to the remote cluster, the rest locally."""
    from deploy.processes import ServiceProcess, last_json_line
    from services.common.kafka import end_positions
    from services.generator.settings import GeneratorSettings

    # Where this run's labels (and the detector's anomalies) begin, for scoring this run only.
    ctx.score_from = end_positions(ctx.env, [LABELS, ANOMALIES])
    ctx.stream_from = source_positions(ctx.env)
    # What an earlier, interrupted run left uncommitted: each stage must process it plus exactly this run's events.
    ctx.figures.leftover = {name: lag() for name, lag in _consumer_lags(ctx).items()}
    # Simulated time ends about now (topic retention goes by record timestamp); seed and start reproduce the run.
    ctx.start = start = GeneratorSettings().backlog_start(ctx.events, int(time.time() * 1000)).isoformat()
    _step(f"generator: {ctx.events:,} events, {ctx.seed_start}")
    generator = ServiceProcess(
        "services.generator",
        ctx.service_env("services.generator"),
        ctx.log("generator"),
        "--events",
        str(ctx.events),
        "--no-pace",
        "--seed",
        str(ctx.seed),
        "--start",
        start,
    ).start(capture_stdout=True)
    code, stdout = generator.wait(timeout=900)
    if code != 0:
        raise RuntimeError(f"generator exited {code}; see {ctx.log('generator')}")
    summary = last_json_line(stdout)
    ctx.figures.generated = {topic: int(count) for topic, count in summary["topics"].items()}
    section = "Generator (this run)"
    for topic, count in sorted(summary["topics"].items()):
        ctx.report.add(section, topic, f"{count:,}")
    rate = summary.get("records_per_s")
    ctx.report.add(section, "records, time", f"{summary['records']:,} in {summary['elapsed_s']:.1f}s ({rate:,.0f}/s)")
    injected = summary.get("anomalies_injected", {})
    ctx.report.add(section, "anomalies injected", ", ".join(f"{k}={v}" for k, v in sorted(injected.items())) or "0")
    ctx.figures.injected = {kind: int(count) for kind, count in injected.items()}


def _event_ids(ctx: RunContext, topic: str, start: dict[int, int]) -> list[str]:
    """The event id of every committed record on ``topic`` from ``start`` (per partition) to its current end."""
    from services.common.kafka import read_topic
    from services.common.serde import AvroSerde, registry_client

    serde = AvroSerde(registry_client(SchemaRegistrySettings.from_mapping(ctx.env)))
    return [
        str(serde.decode(value)["metadata"]["event_id"])
        for _key, value, _ts in read_topic(ctx.env, topic, start=start)
        if value is not None
    ]


def _pending(ctx: RunContext, group: str, topics: list[str]) -> int:
    """Records of local ``topics`` that ``group`` has not committed, read and counted: on the mirrored topic an
    offset is not a record (each of the mirror's transactions leaves a commit marker per partition)."""
    from deploy.processes import probe
    from services.common.kafka import read_topic

    committed = probe(ctx.local()).committed(group, topics)
    return sum(
        sum(1 for _ in read_topic(ctx.env, topic, start={p: o for (t, p), o in committed.items() if t == topic}))
        for topic in topics
    )


def _wait_caught_up(
    ctx: RunContext, processes: Mapping[str, ServiceProcess], caught_up: Callable[[], bool], timeout: float
) -> bool:
    """Wait until ``caught_up()``, or until one of the stage's service processes has ended: it cannot catch up then
    (a refused credential or ACL, a crash), and the report names it at once instead of after the timeout."""
    from deploy.processes import wait_until

    wait_until(lambda: caught_up() or not all(process.alive() for process in processes.values()), timeout, 1.0)
    ended = {name: process for name, process in processes.items() if not process.alive()}
    for name, process in ended.items():
        code = process.process.returncode if process.process is not None else None
        ctx.report.problems.append(f"{name} ended before catching up (exit {code}); see {process.log}")
    return not ended and caught_up()


def stage_mirror(ctx: RunContext) -> None:
    """Remote product views into the local cluster, registry-aware, exactly once (transactions)."""
    from deploy.processes import ServiceProcess, group_lag
    from services.common.kafka import end_positions

    produced = ctx.figures.generated.get(PRODUCT_VIEWS_REMOTE, 0)
    expected = _expected(ctx, "mirror", produced)
    first = end_positions(ctx.env, [PRODUCT_VIEWS_LOCAL])[PRODUCT_VIEWS_LOCAL]
    lag_before = group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE])
    _step(f"mirror: {PRODUCT_VIEWS_REMOTE} (remote, SASL) -> {PRODUCT_VIEWS_LOCAL}, {lag_before:,} records behind")
    mirror = ServiceProcess(
        "services.mirror", ctx.service_env("services.mirror"), ctx.log("mirror"), MIRROR_GROUP_ID=MIRROR_GROUP
    ).start()
    started = time.monotonic()
    try:
        caught_up = _wait_caught_up(
            ctx, {"mirror": mirror}, lambda: group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE]) == 0, 600
        )
        elapsed = time.monotonic() - started
    finally:
        code = mirror.stop()
    # records read, not offsets: the mirror's transactions leave a commit marker per partition in the log
    landed = _event_ids(ctx, PRODUCT_VIEWS_LOCAL, first)
    mirrored = len(landed)
    lag = group_lag(ctx.remote(), MIRROR_GROUP, [PRODUCT_VIEWS_REMOTE])
    ctx.figures.mirrored = mirrored
    ctx.report.figures.mirrored_distinct = len(set(landed))
    section = "Mirror (remote -> local)"
    ok = mirrored == expected
    ctx.report.add(section, "produced upstream this run", f"{produced:,}")
    ctx.report.add(
        section,
        "mirrored this run",
        f"{mirrored:,} of {expected:,} expected ({_expectation(ctx, 'mirror', produced)}) "
        f"[{'match' if ok else 'MISMATCH'}] in {elapsed:.1f}s (incl. start-up)",
    )
    ctx.report.add(section, "mirror lag after the run", f"{lag:,} records")
    ctx.report.add(section, "exit on SIGTERM", code)
    if not caught_up or lag != 0:
        ctx.report.problems.append(f"mirror did not catch up: lag {lag}")
    if not ok:
        ctx.report.problems.append(f"mirror copied {mirrored} records, expected {expected} ({lag_before} pending)")
    if code != 0:
        ctx.report.problems.append(f"mirror exited {code} on SIGTERM; see {ctx.log('mirror')}")


def stage_enrich_detect(ctx: RunContext) -> None:
    """The Faust enricher and the anomaly detector side by side until both have committed everything pending."""
    from deploy.processes import ServiceProcess, end_offsets, group_lag
    from services.anomaly_detector.score import score
    from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
    from services.common.kafka import end_positions
    from services.enricher.inspect import summary
    from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS, EnricherSettings

    enricher, detector = EnricherSettings(), DetectorSettings()
    sources, outputs = list(SOURCE_TOPICS.values()), list(OUTPUT_TOPICS.values())
    detected_topics = list(INPUT_TOPICS)
    pending = _pending(ctx, enricher.app_id, sources)
    start = {**end_positions(ctx.env, outputs), **ctx.score_from}
    before = end_offsets(ctx.local(), outputs)
    _step(f"enricher (Faust) and anomaly detector: {pending:,} events to enrich")
    processes = {
        "enricher": ServiceProcess("services.enricher", ctx.service_env("services.enricher"), ctx.log("enricher")),
        "anomaly detector": ServiceProcess(
            "services.anomaly_detector",
            ctx.service_env("services.anomaly_detector"),
            ctx.log("anomaly_detector"),
            ANOMALY_DETECTOR_IDLE_FLUSH_S="2",
        ),
    }
    for process in processes.values():
        process.start()
    started = time.monotonic()
    try:

        def caught_up() -> bool:
            # The detector's stage 1 first: once it committed the raw topics, its re-keyed records are durable and
            # stage 2's lag on the repartition topic counts them all.
            return (
                group_lag(ctx.local(), enricher.app_id, sources) == 0
                and group_lag(ctx.local(), detector.repartition_group_id, detected_topics) == 0
                and group_lag(ctx.local(), detector.group_id, [detector.topic(DETECTOR_INPUT)]) == 0
            )

        done = _wait_caught_up(ctx, processes, caught_up, 900)
        elapsed = time.monotonic() - started
    finally:
        codes = {name: process.stop() for name, process in processes.items()}  # the detector flushes its windows
    after = end_offsets(ctx.local(), outputs)
    enriched = {topic: after[topic] - before[topic] for topic in outputs}
    found = summary(ctx.env, outputs, start)
    figures = ctx.report.figures
    figures.enriched = dict(enriched)
    figures.enriched_distinct = {topic: int(found["topics"][topic]["distinct_events"]) for topic in outputs}
    figures.enriched_duplicates = {topic: int(found["topics"][topic]["duplicates"]) for topic in outputs}
    section = "Enrichment (Faust, this run)"
    for topic in outputs:
        ctx.report.add(section, topic, f"{enriched[topic]:,}")
    total = sum(enriched.values())
    this_run = _produced_this_run(ctx, sources)
    expected = _expected(ctx, "enricher", this_run)
    ok = total == expected == pending
    ctx.report.add(
        section,
        "enriched of expected",
        f"{total:,} of {expected:,} ({_expectation(ctx, 'enricher', this_run)}; {pending:,} were pending) "
        f"[{'match' if ok else 'MISMATCH'}]",
    )
    unknown = found["unknown_references"]
    ctx.report.add(section, "unknown references", ", ".join(f"{k}={v:,}" for k, v in unknown.items()) or "0")
    p50, p99 = found["latency_p50_s"], found["latency_p99_s"]
    if p50 is not None and p99 is not None:
        # An unpaced run generates minutes of event time in seconds, ending at generation time: this is the age
        # of the backlog when enriched, not the latency of a paced stream.
        ctx.report.add(section, "event time -> enriched, p50 / p99 (unpaced backlog)", f"{p50:.1f}s / {p99:.1f}s")
    ctx.report.add(section, "time to catch up", f"{elapsed:.1f}s (incl. start-up and table recovery)")
    if not done or not ok:
        ctx.report.problems.append(f"enricher: {total} enriched, expected {expected} ({pending} pending)")

    result = score(ctx.env, LABELS, ANOMALIES, start=start)
    figures.detection = copy.deepcopy(result["per_type"])
    section = "Anomaly detection (this run)"
    ctx.report.add(section, "reproduce with", ctx.seed_start)
    ctx.report.add(section, "injected (labels) / detected", f"{result['labels']:,} / {result['detections']:,}")

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for kind, item in sorted(result["per_type"].items()):
        ctx.report.add(
            section,
            kind,
            f"injected {item['labels']}, detected {item['detections']}, precision {ratio(item['precision'])}, "
            f"recall {ratio(item['recall'])}, detections per matched incident {ratio(item['detections_per_incident'])}",
        )
    undecodable = sum(result["undecodable"].values())
    ctx.report.add(section, "undecodable records", f"{undecodable:,}")
    if undecodable:
        ctx.report.problems.append(f"scorer: {result['undecodable']} records could not be decoded")
    for name, code in codes.items():
        if code != 0:
            ctx.report.problems.append(f"{name} exited {code} on SIGTERM; see {processes[name].log}")


# The sinks the main job runs: adding a sink to the pipeline is one line here (its package provides
# ``inspect.inspector(env)``, see services/common/sinks/inspect.py).
SINKS: tuple[tuple[str, str], ...] = (
    ("mongodb", "services.sink_mongodb"),
    ("hdfs", "services.sink_hdfs"),
    ("gcs", "services.sink_gcs"),
)


def _inspectors(ctx: RunContext) -> dict[str, SinkInspector]:
    return {name: importlib.import_module(f"{module}.inspect").inspector(ctx.env) for name, module in SINKS}


def stage_sinks(ctx: RunContext) -> None:
    """Raw views to MongoDB, the raw lake families to HDFS, raw finance events to GCS: counts must match."""
    from deploy.processes import ServiceProcess, group_lag

    inspectors = _inspectors(ctx)
    modules = dict(SINKS)

    def lag(name: str) -> int:
        settings = inspectors[name].settings
        return group_lag(ctx.local(), settings.group_id, settings.topic_list())

    # What each sink has to land: this run's events plus anything an earlier, interrupted run left behind; the
    # consumer groups' lag must say the same.
    pending = {name: _pending(ctx, i.settings.group_id, i.settings.topic_list()) for name, i in inspectors.items()}
    this_run = {name: _produced_this_run(ctx, i.settings.topic_list()) for name, i in inspectors.items()}
    expected = {name: _expected(ctx, name, count) for name, count in this_run.items()}
    marks = {name: inspector.mark() for name, inspector in inspectors.items()}
    _step("sinks: MongoDB (views), HDFS (clickstream, orders, shipments, views), GCS (finance), exactly once")
    processes = {
        name: ServiceProcess(module, ctx.service_env(module), ctx.log(module.rsplit(".", 1)[-1])).start()
        for name, module in modules.items()
    }
    started = time.monotonic()
    try:
        _wait_caught_up(ctx, processes, lambda: all(lag(name) == 0 for name in inspectors), 900)
        elapsed = time.monotonic() - started
    finally:
        codes = {name: process.stop() for name, process in processes.items()}
    section = "Sinks (this run)"
    for name, inspector in inspectors.items():
        landed = inspector.landed_since(marks[name])
        ctx.report.figures.landed[name] = landed.records
        ctx.report.figures.sink_topics[name] = list(inspector.settings.topic_list())
        files = f", {landed.files:,} {inspector.file_unit}" if landed.files is not None else ""
        ok = landed.records == expected[name] == pending[name]
        ctx.report.add(
            section,
            f"{name} ({inspector.target})",
            f"{landed.records:,} {inspector.unit} of {expected[name]:,} expected "
            f"({_expectation(ctx, name, this_run[name])}; {pending[name]:,} were pending){files}, "
            f"{landed.bytes:,} bytes [{'match' if ok else 'MISMATCH'}]",
        )
        if not ok:
            ctx.report.problems.append(
                f"{name}: landed {landed.records}, expected {expected[name]} ({pending[name]} pending)"
            )
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
    ("stream windows", stage_stream),
    ("sinks", stage_sinks),
    ("daily batch (airflow)", stage_daily),
    ("dbt (airflow)", stage_dbt),
    ("monitoring", stage_monitoring),
]


def execute(
    stack: Stack,
    env: dict[str, str],
    events: int,
    report: Report | None = None,
    seed: int | None = None,
    *,
    stages: Collection[str] | None = None,
    then: Sequence[tuple[str, Stage]] = (),
) -> Report:
    """Run the stages against a running stack, every one or only those named in ``stages`` (in ``STAGES``' order,
    for a stack of the components they need), then the caller's stages ``then`` with the same run; failures are
    recorded in the report, never raised."""
    known = [name for name, _ in STAGES]
    unknown = sorted(set(stages or ()) - set(known))
    if unknown:
        raise ValueError(f"unknown stages {', '.join(unknown)}; the stages are {', '.join(known)}")
    report = report or Report()
    seed = seed if seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "big")
    ctx = RunContext(env=env, stack=stack, report=report, run_id=uuid.uuid4().hex[:8], events=events, seed=seed)
    chosen = [(name, stage) for name, stage in STAGES if stages is None or name in stages]
    for name, stage in [*chosen, *then]:
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
    report = Report()
    started = time.monotonic()
    try:
        _step("starting the local stack")
        with stack.running(keep=keep_stack, progress=_step) as env:
            execute(stack, env, events, report, seed)
    except StackError as error:
        report.problems.append(str(error))
    report.add("Run", "duration", f"{time.monotonic() - started:.0f}s")
    report.render(out)
    if report.problems:
        raise typer.Exit(code=1)
