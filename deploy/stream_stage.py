"""The main job's stream stage: the Flink window jobs over this run's source events, checked against their oracle.

Every window job (``deploy.flink_jobs.JOBS``) runs in one Flink job on the stack's cluster (``FLINK_REST_URL``),
each with its own settings, consumer group, outputs and transactional ids (``stream_processors.window_jobs``): one
client start and one plan instead of five, one task slot.

1. a job still running a window job of the same deployment (same job, same consumer group: the same pipeline
   name, ``WindowJob.pipeline_name``, alone or within a Flink job of several) is cancelled: it is stale (an earlier
   run's), its open transactions are aborted and never read, and it would count this run's events a second time.
   The stage never reuses a running job: a job's windows hold whatever it read before, and a window is only
   comparable with an oracle over known events;
2. each job's consumer group is set to where this run's events begin on its source topic (``source_positions``,
   taken before the generator ran) and the jobs are submitted (each starts at its group's offsets);
3. once every group has committed every source record (Flink commits offsets at checkpoints; a Flink job that has
   failed ``GIVE_UP_FAILURES`` times meanwhile, such as on a refused login or ACL, is cancelled and the stage stops
   at once on its root cause), each job's late-event counter is read from Prometheus (the records its late path
   wrote, Flink's own metric), then the job is stopped with a savepoint and ``drain``: event time advances to the
   end, so every open window fires and is committed. The generator's simulated time ends about now, so no event of
   the run would ever close the last windows, and the idle-source timeout only stops a quiet partition from holding
   the watermark back: it never moves it forward; a closing event written to the shared source topic would be
   counted by every other consumer. Every job the stage stops (drained, or stale and cancelled) is reported to the
   stack's statsd_exporter as stopped on purpose (``flink_jobs.record_stopped``), so the ``FreightlineFlinkJobsLost``
   alert does not take it for lost;
4. per job, the committed output (``read_committed``, from where the sink topic ended before the job started), the
   PostgreSQL rows of the run's windows and the late events the job reported are compared with the oracle of the
   events the job read minus those it reported late (with several source partitions, the idle timeout can let
   the watermark pass a partition fetched later: such events are written to the late topic, never lost), and the
   late events on the topic with the counter Prometheus saw.
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
from deploy.processes import commit_positions, group_behind, readable_ends, wait_until
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
# a job failing this often while it reads (a refused login or ACL, an unreachable server: each failure restarts it)
# will not read its sources: the stage stops it and names the cause at once instead of after READ_TIMEOUT_S
GIVE_UP_FAILURES = 3
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
    late_seen: int | None = None  # its late-event counter (Flink's metric) in Prometheus; None: not read
    windows_expected: int = 0  # the oracle's windows
    kafka_rows: int = 0  # committed aggregate records (read_committed) the job wrote
    kafka_duplicates: int = 0  # windows among them emitted more than once
    postgres_rows: int = 0  # rows of the oracle's windows in the job's table
    kafka_windows: int = 0  # distinct windows among the committed records
    kafka_missing: int = 0  # the oracle's windows with no committed record
    kafka_unexpected: int = 0  # committed windows the oracle has not
    kafka_differing: int = 0  # windows committed with other values than the oracle's
    postgres_missing: int = 0  # the oracle's windows with no row
    postgres_differing: int = 0  # rows with other values than the oracle's
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
    names: list[str]
    settings: dict[str, WindowJobSettings]
    job_id: str
    sink_from: dict[str, dict[int, int]]
    late_from: dict[str, dict[int, int]]
    started: float


def _deployments(env: Mapping[str, str], names: list[str]) -> list[str]:
    """The window jobs' pipeline names (job and consumer group): what a running Flink job of them is known by."""
    return [flink_jobs.job(name).job.pipeline_name(_settings(name, env)) for name in names]


def _cancel_stale(ctx: RunContext, names: list[str], rest_url: str) -> None:
    stale = flink_jobs.stop_active(rest_url, _deployments(ctx.env, names))
    flink_jobs.record_stopped(ctx.env, stale)
    if stale:
        ctx.report.add(SECTION, "stale jobs cancelled", ", ".join(stale))


def _start(ctx: RunContext, names: list[str], rest_url: str) -> _Started:
    settings = {name: _settings(name, ctx.env) for name in names}
    positions = end_positions(ctx.env, sorted({t for s in settings.values() for t in (s.sink_topic, s.late_topic)}))
    for job_settings in settings.values():
        commit_positions(
            ctx.local(), job_settings.group_id, job_settings.source_topic, ctx.stream_from[job_settings.source_topic]
        )
    idle = {f"{flink_jobs.job(name).settings_prefix}IDLE_TIMEOUT_MS": str(STAGE_IDLE_TIMEOUT_MS) for name in names}
    started = time.monotonic()
    # on a secure stack the jobs read and write as the `stream` principal (deploy/local/kafka_acls.py)
    job_id = flink_jobs.submit(ctx.stack.ctx, names, rest_url, {**ctx.service_env("stream"), **idle})
    return _Started(
        names,
        settings,
        job_id,
        {name: positions[s.sink_topic] for name, s in settings.items()},
        {name: positions[s.late_topic] for name, s in settings.items()},
        started,
    )


def _late_seen(ctx: RunContext, run: _Started, after: float) -> dict[str, int]:
    """Each job's late-event counter as Prometheus saw it once every event was read; none without Prometheus."""
    prometheus = ctx.env.get("PROMETHEUS_URL")
    if not prometheus:
        ctx.report.problems.append("the stack exported no PROMETHEUS_URL: the jobs' late-event counters are unread")
        return {}
    jobs = [flink_jobs.job(name).job.name for name in run.names]
    try:
        seen = flink_jobs.late_events_seen(prometheus, run.job_id, jobs, after)
    except flink_jobs.FlinkError as error:
        ctx.report.problems.append(str(error))
        return {}
    return {name: seen[flink_jobs.job(name).job.name] for name in run.names}


def _failing(rest_url: str, job_id: str) -> bool:
    """Whether the job has failed ``GIVE_UP_FAILURES`` times or ended: it will not read its sources then."""
    if flink_jobs.job_details(rest_url, job_id)["state"] not in flink_jobs.ACTIVE_STATES:
        return True
    return len(flink_jobs.failures(rest_url, job_id)) >= GIVE_UP_FAILURES


def _finish(ctx: RunContext, run: _Started, rest_url: str) -> dict[str, WindowJobFigures]:
    # Against the last readable record, not the high watermark: the mirrored topic ends with a commit marker.
    readable = readable_ends(ctx.local(), sorted({s.source_topic for s in run.settings.values()}))
    ends = {
        s.group_id: {key: end for key, end in readable.items() if key[0] == s.source_topic}
        for s in run.settings.values()
    }

    def read() -> bool:
        return all(group_behind(ctx.local(), group, group_ends) == 0 for group, group_ends in ends.items())

    wait_until(lambda: read() or _failing(rest_url, run.job_id), READ_TIMEOUT_S)
    if not read():
        failed = flink_jobs.failures(rest_url, run.job_id)
        flink_jobs.stop_active(rest_url, _deployments(ctx.env, run.names))
        flink_jobs.record_stopped(ctx.env, [run.job_id])
        if failed:
            raise RuntimeError(f"the window jobs failed {len(failed)} times (job {run.job_id}, cancelled): {failed[0]}")
        raise RuntimeError(f"the window jobs did not read their sources within {READ_TIMEOUT_S} s (job {run.job_id})")
    late_seen = _late_seen(ctx, run, time.time())
    flink_jobs.savepoint(rest_url, run.job_id, stop=True, drain=True)
    flink_jobs.wait_finished(rest_url, run.job_id)
    flink_jobs.record_stopped(ctx.env, [run.job_id])  # drained on purpose: FreightlineFlinkJobsLost leaves it alone
    elapsed = time.monotonic() - run.started
    figures = {}
    for name in run.names:
        figures[name] = _figures(ctx, name, run.settings[name], run.sink_from[name], run.late_from[name])
        figures[name].late_seen = late_seen.get(name)
        figures[name].elapsed_s = elapsed
    return figures


def _figures(
    ctx: RunContext, name: str, settings: WindowJobSettings, sink_from: dict[int, int], late_from: dict[int, int]
) -> WindowJobFigures:
    """One job's figures from its outputs, against the oracle of the events it read and did not report late."""
    return window_figures(
        ctx.env, name, settings, ctx.stream_from[settings.source_topic], sink_from, late_from, ctx.env["POSTGRES_DSN"]
    )


def window_figures(
    env: Mapping[str, str],
    name: str,
    settings: WindowJobSettings,
    source_from: Mapping[int, int] | None,
    sink_from: Mapping[int, int] | None,
    late_from: Mapping[int, int] | None,
    dsn: str,
) -> WindowJobFigures:
    """Window job ``name``'s figures from its outputs (``env``: the cluster and registry to read them from; each
    topic from the given offsets, default its beginning), against the oracle of the events it read from
    ``source_from`` on and did not report late (every window closed: the job was drained)."""
    job = flink_jobs.job(name).job
    figures = WindowJobFigures()
    serde = AvroSerde(registry_client(SchemaRegistrySettings.from_mapping(env)))
    events = [
        serde.decode(value)
        for _key, value, _ts in read_topic(env, settings.source_topic, start=source_from)
        if value is not None
    ]
    figures.source_events = len(events)
    late = {
        str(value["metadata"]["event_id"])
        for _key, value in read_committed(env, settings.late_topic, late_from)
        if value["job"] == job.name and value["source_topic"] == settings.source_topic
    }
    figures.late_events = len(late)
    counted = [event for event in events if str(event["metadata"]["event_id"]) not in late]
    expected = ORACLES[job.name](counted, None)  # drained: every window closed
    figures.counted_events = len(counted)
    figures.windows_expected = len(expected)

    emitted: Windows = {}
    seen: Counter[tuple[Any, ...]] = Counter()
    for _key, value in read_committed(env, settings.sink_topic, sink_from):
        window = (*(value[name] for name in job.key), value["window_start"])
        value["metadata"].pop("ingest_time")
        seen[window] += 1
        emitted[window] = value
    figures.kafka_rows = sum(seen.values())
    figures.kafka_duplicates = sum(count - 1 for count in seen.values())
    figures.kafka_windows = len(emitted)
    figures.kafka_missing = len(expected.keys() - emitted.keys())
    figures.kafka_unexpected = len(emitted.keys() - expected.keys())
    figures.kafka_differing = sum(1 for key in expected.keys() & emitted.keys() if expected[key] != emitted[key])
    figures.kafka_agrees = emitted == expected
    columns = [column.name for column in job.warehouse]
    rows = _postgres_rows(dsn, settings.postgres_table, columns, [*job.key, "window_start"], expected)
    figures.postgres_rows = len(rows)
    expected_rows = {key: {name: value[name] for name in columns} for key, value in expected.items()}
    figures.postgres_missing = len(expected_rows.keys() - rows.keys())
    figures.postgres_differing = sum(1 for key in rows if rows[key] != expected_rows[key])
    figures.postgres_agrees = rows == expected_rows
    figures.differences = differences(expected, emitted) + differences(expected_rows, rows)
    return figures


def stage_stream(ctx: RunContext) -> None:
    """Submit every window job over this run's events as one Flink job, drain it, and compare each job's outputs
    with its oracle."""
    rest_url = ctx.env.get("FLINK_REST_URL")
    if not rest_url:
        raise RuntimeError("the stack exported no FLINK_REST_URL: its Flink cluster is not running")
    names = list(flink_jobs.JOBS)
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] Flink window jobs, as one Flink job: {', '.join(names)}")
    _cancel_stale(ctx, names, rest_url)
    run = _start(ctx, names, rest_url)
    for name, figures in _finish(ctx, run, rest_url).items():
        _report(ctx, name, figures, run.job_id)


def _report(ctx: RunContext, name: str, figures: WindowJobFigures, job_id: str) -> None:
    """Add a job's figures (and any disagreement) to the report."""
    ctx.figures.stream[name] = figures
    verdict = "match" if figures.agrees else "MISMATCH"
    seen = "unread" if figures.late_seen is None else f"{figures.late_seen:,}"
    ctx.report.add(
        SECTION,
        name,
        f"{figures.windows_expected:,} windows expected from {figures.source_events:,} events "
        f"({figures.counted_events:,} counted, {figures.late_events:,} late; late-event counter in Prometheus "
        f"{seen}); Kafka {figures.kafka_rows:,} committed ({figures.kafka_duplicates:,} repeated), PostgreSQL "
        f"{figures.postgres_rows:,} rows [{verdict}] in {figures.elapsed_s:.0f}s (job {job_id})",
    )
    if not figures.agrees:
        ctx.report.problems.append(
            f"{name}: windows differ from the oracle (Kafka {figures.kafka_agrees}, PostgreSQL "
            f"{figures.postgres_agrees}, {figures.kafka_duplicates} repeated): {figures.differences}"
        )
    if figures.late_seen is not None and figures.late_seen != figures.late_events:
        ctx.report.problems.append(
            f"{name}: {figures.late_events} late events on the late topic, {figures.late_seen} counted by Flink's "
            "late-event counter in Prometheus"
        )
