"""The main job's stream stage: the Flink window jobs over this run's source events, checked against their oracle.

Per job (``deploy.flink_jobs.JOBS``), on the stack's Flink cluster (``FLINK_REST_URL``):

1. a job of the same deployment still running (same job, same consumer group, hence the same name on the cluster:
   ``WindowJob.pipeline_name``) is cancelled: it is stale (an earlier run's), its open transactions are aborted and
   never read, and it would count this run's events a second time. The stage never reuses a running job: a job's
   windows hold whatever it read before, and a window is only comparable with an oracle over known events;
2. the job's consumer group is set to where this run's events begin on its source topic (``source_positions``,
   taken before the generator ran) and the job is submitted (it starts at the group's offsets);
3. once the group has committed every source record (Flink commits offsets at checkpoints), the job is stopped with
   a savepoint and ``drain``: event time advances to the end, so every open window fires and is committed. The
   generator's simulated time ends about now, so no event of the run would ever close the last windows, and the
   idle-source timeout only stops a quiet partition from holding the watermark back: it never moves it forward;
   a closing event written to the shared source topic would be counted by every other consumer of it. Every job
   the stage stops (drained, or stale and cancelled) is reported to the stack's statsd_exporter as stopped on
   purpose (``flink_jobs.record_stopped``), so the ``FreightlineFlinkJobsLost`` alert does not take it for lost;
4. the committed output (``read_committed``, from where the sink topic ended before the job started), the
   PostgreSQL rows of the run's windows and the late events the job reported are compared with the oracle of the
   events the job read minus those it reported late (with several source partitions, the idle timeout can let
   the watermark pass a partition fetched later: such events are written to the late topic, never lost).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console

from deploy import flink_jobs
from deploy.processes import commit_positions, group_lag, wait_until
from services.common.kafka import end_positions, read_topic
from services.common.serde import AvroSerde, registry_client
from services.common.settings import SchemaRegistrySettings
from stream_processors.flink_sql import WindowJobSettings
from stream_processors.oracle import ORACLES, Windows, differences, read_committed

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

console = Console(stderr=True)

SECTION = "Stream windows (Flink, this run)"
READ_TIMEOUT_S = 600  # hang guard: the jobs read a run's backlog in well under a minute
# the jobs' idle-source timeout in the stage (the setting's default is for long-running jobs): none. A bounded run
# ends with a drain, whose end-of-time watermark Flink ignores from a source marked idle (its last windows would
# never fire), nothing waits on a window before the drain, and over a backlog in several partitions a timeout lets
# the watermark pass the records of a partition fetched later (reported late instead of counted)
STAGE_IDLE_TIMEOUT_MS = 0


@dataclass
class WindowJobFigures:
    """One window job's run: what it read, emitted and reported late, and its agreement with the oracle."""

    source_events: int = 0  # records of the run on the job's source topic
    counted_events: int = 0  # of them, the ones it did not report late (the oracle's input)
    late_events: int = 0  # events the job reported on the late topic (this run, this job)
    windows_expected: int = 0  # the oracle's windows
    kafka_rows: int = 0  # committed aggregate records (read_committed) the job wrote
    kafka_duplicates: int = 0  # windows among them emitted more than once
    postgres_rows: int = 0  # rows of the oracle's windows in the job's table
    kafka_agrees: bool = False  # every field of every window equals the oracle's, none missing, none extra
    postgres_agrees: bool = False
    differences: list[str] = field(default_factory=list)  # the first few differences, if any
    elapsed_s: float = 0.0

    @property
    def agrees(self) -> bool:
        return self.kafka_agrees and self.postgres_agrees and self.kafka_duplicates == 0


def _settings(name: str, env: Mapping[str, str]) -> WindowJobSettings:
    return flink_jobs.job_settings(flink_jobs.job(name), env)


def source_positions(env: Mapping[str, str]) -> dict[str, dict[int, int]]:
    """Where each window job's source topic ends now (taken before a run's events, where the run begins)."""
    return end_positions(env, sorted({_settings(name, env).source_topic for name in flink_jobs.JOBS}))


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) and value.tzinfo is None else value


def _postgres_rows(dsn: str, table: str, columns: list[str], key: list[str], windows: Windows) -> Windows:
    """The table's rows of ``windows`` (keyed like them); rows of other windows (earlier runs) are not read."""
    import psycopg

    starts = sorted({window[-1] for window in windows})
    if not starts:
        return {}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE window_start BETWEEN %s AND %s",
            (starts[0].replace(tzinfo=None), starts[-1].replace(tzinfo=None)),
        ).fetchall()
    result: Windows = {}
    for row in rows:
        values = {name: _utc(value) for name, value in zip(columns, row, strict=True)}
        window = tuple(values[name] for name in key)
        if window in windows:
            result[window] = values
    return result


@dataclass
class _Started:
    name: str
    settings: WindowJobSettings
    job_id: str
    sink_from: dict[int, int]
    late_from: dict[int, int]
    started: float


def _cancel_stale(ctx: RunContext, name: str, rest_url: str) -> None:
    stale = flink_jobs.stop_active(rest_url, flink_jobs.job(name).job.pipeline_name(_settings(name, ctx.env)))
    flink_jobs.record_stopped(ctx.env, stale)
    if stale:
        ctx.report.add(SECTION, f"{name}: stale jobs cancelled", ", ".join(stale))


def _start(ctx: RunContext, name: str, rest_url: str) -> _Started:
    spec = flink_jobs.job(name)
    settings = _settings(name, ctx.env)
    positions = end_positions(ctx.env, [settings.sink_topic, settings.late_topic])
    commit_positions(ctx.local(), settings.group_id, settings.source_topic, ctx.stream_from[settings.source_topic])
    started = time.monotonic()
    job_id = flink_jobs.submit(
        ctx.stack.ctx,
        name,
        rest_url,
        {**ctx.env, f"{spec.settings_prefix}IDLE_TIMEOUT_MS": str(STAGE_IDLE_TIMEOUT_MS)},
    )
    return _Started(name, settings, job_id, positions[settings.sink_topic], positions[settings.late_topic], started)


def _finish(ctx: RunContext, run: _Started, rest_url: str) -> WindowJobFigures:
    spec = flink_jobs.job(run.name)
    settings, job = run.settings, spec.job
    figures = WindowJobFigures()
    read = wait_until(lambda: group_lag(ctx.local(), settings.group_id, [settings.source_topic]) == 0, READ_TIMEOUT_S)
    if not read:
        raise RuntimeError(f"{run.name} did not read its source within {READ_TIMEOUT_S} s (job {run.job_id})")
    flink_jobs.savepoint(rest_url, run.job_id, stop=True, drain=True)
    flink_jobs.wait_finished(rest_url, run.job_id)
    flink_jobs.record_stopped(ctx.env, [run.job_id])  # drained on purpose: FreightlineFlinkJobsLost leaves it alone
    figures.elapsed_s = time.monotonic() - run.started

    bootstrap, registry = ctx.env["KAFKA_BOOTSTRAP_SERVERS"], ctx.env["SCHEMA_REGISTRY_URL"]
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=registry)))
    events = [
        serde.decode(value)
        for _key, value, _ts in read_topic(ctx.env, settings.source_topic, start=ctx.stream_from[settings.source_topic])
        if value is not None
    ]
    figures.source_events = len(events)
    late = {
        str(value["metadata"]["event_id"])
        for _key, value in read_committed(bootstrap, registry, settings.late_topic, run.late_from)
        if value["job"] == job.name and value["source_topic"] == settings.source_topic
    }
    figures.late_events = len(late)
    counted = [event for event in events if str(event["metadata"]["event_id"]) not in late]
    expected = ORACLES[job.name](counted, None)  # drained: every window closed
    figures.counted_events = len(counted)
    figures.windows_expected = len(expected)

    emitted: Windows = {}
    seen: Counter[tuple[Any, ...]] = Counter()
    for _key, value in read_committed(bootstrap, registry, settings.sink_topic, run.sink_from):
        window = (*(value[name] for name in job.key), value["window_start"])
        value["metadata"].pop("ingest_time")
        seen[window] += 1
        emitted[window] = value
    figures.kafka_rows = sum(seen.values())
    figures.kafka_duplicates = sum(count - 1 for count in seen.values())
    figures.kafka_agrees = emitted == expected
    columns = [column.name for column in job.warehouse]
    rows = _postgres_rows(
        ctx.env["POSTGRES_DSN"], settings.postgres_table, columns, [*job.key, "window_start"], expected
    )
    figures.postgres_rows = len(rows)
    expected_rows = {key: {name: value[name] for name in columns} for key, value in expected.items()}
    figures.postgres_agrees = rows == expected_rows
    figures.differences = differences(expected, emitted) + differences(expected_rows, rows)
    return figures


def stage_stream(ctx: RunContext) -> None:
    """Submit every window job over this run's events, drain it, and compare both outputs with the oracle."""
    rest_url = ctx.env.get("FLINK_REST_URL")
    if not rest_url:
        raise RuntimeError("the stack exported no FLINK_REST_URL: its Flink cluster is not running")
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] Flink window jobs: {', '.join(flink_jobs.JOBS)}")
    for name in flink_jobs.JOBS:
        _cancel_stale(ctx, name, rest_url)
    # as many jobs side by side as the cluster has slots (a slot each, parallelism 1), each drained once it has
    # read its source; a job submitted beyond the slots would wait for one and could time out
    slots = max(1, flink_jobs.slots_total(rest_url))
    names = list(flink_jobs.JOBS)
    for batch in (names[i : i + slots] for i in range(0, len(names), slots)):
        for run in [_start(ctx, name, rest_url) for name in batch]:
            _report(ctx, run, rest_url)


def _report(ctx: RunContext, run: _Started, rest_url: str) -> None:
    """Finish a job's run and add its figures (and any disagreement) to the report."""
    figures = ctx.figures.stream[run.name] = _finish(ctx, run, rest_url)
    verdict = "match" if figures.agrees else "MISMATCH"
    ctx.report.add(
        SECTION,
        run.name,
        f"{figures.windows_expected:,} windows expected from {figures.source_events:,} events "
        f"({figures.counted_events:,} counted, {figures.late_events:,} late); Kafka {figures.kafka_rows:,} "
        f"committed ({figures.kafka_duplicates:,} repeated), PostgreSQL {figures.postgres_rows:,} rows "
        f"[{verdict}] in {figures.elapsed_s:.0f}s (job {run.job_id})",
    )
    if not figures.agrees:
        ctx.report.problems.append(
            f"{run.name}: windows differ from the oracle (Kafka {figures.kafka_agrees}, PostgreSQL "
            f"{figures.postgres_agrees}, {figures.kafka_duplicates} repeated): {figures.differences}"
        )
