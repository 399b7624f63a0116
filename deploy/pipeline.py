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
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deploy.local.context import StackContext
from deploy.local.stack import Stack, StackError
from services.common.settings import KafkaSettings, SchemaRegistrySettings, StackSettings

console = Console(stderr=True)
out = Console()


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
                table.add_row(key, value)
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


STAGES: list[tuple[str, Stage]] = [
    ("components", stage_components),
    ("contracts", stage_register_schemas),
    ("shared-library pipeline", stage_smoke),
]


def execute(stack: Stack, env: dict[str, str], events: int, report: Report | None = None) -> Report:
    """Run every stage against a running stack; failures are recorded in the report, never raised."""
    report = report or Report()
    ctx = RunContext(env=env, stack=stack, report=report, run_id=uuid.uuid4().hex[:8], events=events)
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
    events: Annotated[int, typer.Option(help="Events per generated family.")] = 20_000,
    keep_stack: Annotated[bool, typer.Option(help="Leave the stack running afterwards.")] = False,
) -> None:
    """Run the whole pipeline on the local stack and print a report."""
    stack = Stack(StackContext.create(StackSettings()))
    was_running = stack.supervisor.running()
    report = Report()
    started = time.monotonic()
    try:
        _step("starting the local stack")
        env = stack.up(progress=_step)
        execute(stack, env, events, report)
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
