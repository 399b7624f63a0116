"""The chaos harness's load side: each service's memory sampled through a run, the rate each stage sustains
measured from the backlog, and the paced stream's per-family rates for a total rate.

Memory: a thread samples the resident set (RSS, psutil) of every service process every few seconds; a service's
row holds its RSS after start-up (the first sample of its first process at least ``STARTUP_S`` old), its peak over
every process it ran as (kills restart it), its RSS at the end, and whether the peak stayed within its bound
``MEMORY_BOUND_FACTOR`` x the RSS after start-up + ``MEMORY_ALLOWANCE``. The rule, and why: what a service holds
beyond its code and clients is bounded by its settings, not by its input: librdkafka's producer queue
(``queue.buffering.max.kbytes`` 64 MiB, ``services/common/kafka.py``), its consumer's pre-fetch queue
(``queued.max.messages.kbytes`` 32 MiB) and one batch in flight (``batch_size`` records); 64 + 32 MiB plus a
batch of decoded records make the fixed allowance, and the factor 2 covers the allocator's fragmentation and the
caches that grow with the heap (interpreter, Avro schemas, the enricher's reference tables). A backlog buffered in
memory instead of left in Kafka grows with the run's length and crosses the bound. The generator holds one thing
more, its simulation's open entities: every open order's and shipment's future records (an order's life spans
minutes of simulated time), whose number grows with the configured rates, not with the run's length or any lag;
its run reports the most it held (``scheduled_peak``), and its bound adds ``SCHEDULED_RECORD_BYTES`` for each.

Sustained rate: while the backlog is worked off, every consumer group's committed records and lag are sampled;
a group's rate is its committed records per second over the intervals in which it was at least ``BUSY_LAG`` records
behind at both ends (busy the whole interval rather than waiting for a batch to fill, its start-up past: it had
committed before); a group never that far behind is not measured (it was never the bottleneck). Divided by the
share of the generator's events that reach it (its input records of the backlog over the backlog's events), that is
the generator rate the stage keeps up with, on this machine with every stage running: the slowest stage's figure
is the rate ``--load-factor`` multiplies.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from rich.table import Table

from services.generator.settings import GeneratorSettings

MIB = 1024 * 1024
STARTUP_S = 10.0  # a process's RSS this long after it started is its RSS after start-up
MEMORY_BOUND_FACTOR = 2.0
MEMORY_ALLOWANCE = 128 * MIB  # librdkafka's producer queue 64 MiB + consumer queue 32 MiB + a batch in flight
# a record the generator's engine scheduled, with its share of its order's or shipment's fields: 1.3 KiB (traced
# after 300 s of simulated time; 1.4 KiB of RSS at twice the slowest stage's rate, 200,000 scheduled), rounded up;
# tests/unit/generator/test_engine.py holds the engine to it
SCHEDULED_RECORD_BYTES = 1536
# a group this far behind is busy: less can be one batch waiting for its timeout (the sinks write 5,000 records a
# batch, or what came within the batch timeout), which says nothing of the rate the stage can keep up
BUSY_LAG = 5_000


@dataclass(frozen=True)
class RssSample:
    at: float  # Unix time
    pid: int
    rss: int  # bytes
    age_s: float  # the process's age at the sample


@dataclass(frozen=True)
class MemoryRow:
    service: str
    start: int | None  # RSS after start-up (None: no process of it lived STARTUP_S)
    peak: int
    end: int
    processes: int  # processes it ran as (1 + its restarts)
    samples: int
    scheduled: int = 0  # a generator's peak of scheduled records (its simulation's open entities)

    @property
    def bound(self) -> int | None:
        if self.start is None:
            return None
        return int(MEMORY_BOUND_FACTOR * self.start + MEMORY_ALLOWANCE + self.scheduled * SCHEDULED_RECORD_BYTES)

    @property
    def within(self) -> bool | None:
        return None if self.bound is None else self.peak <= self.bound


def memory_rows(samples: Mapping[str, Sequence[RssSample]], startup_s: float = STARTUP_S) -> list[MemoryRow]:
    """Each service's row from its samples (in time order)."""
    rows = []
    for service, taken in samples.items():
        if not taken:
            continue
        settled = [sample for sample in taken if sample.age_s >= startup_s]
        first_pid = settled[0].pid if settled else None
        start = next((s.rss for s in settled if s.pid == first_pid), None)
        rows.append(
            MemoryRow(
                service=service,
                start=start,
                peak=max(sample.rss for sample in taken),
                end=taken[-1].rss,
                processes=len({sample.pid for sample in taken}),
                samples=len(taken),
            )
        )
    return rows


def scheduled_peak(log: Path) -> int:
    """The most records a generator run scheduled at once, from the summary it printed at its end (0 without)."""
    if not log.exists():
        return 0
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if '"scheduled_peak"' in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return int(json.loads(line)["scheduled_peak"])
    return 0


def memory_table(rows: Sequence[MemoryRow], every_s: float) -> Table:
    table = Table(
        title=f"Memory per service (RSS every {every_s:g}s; bound: {MEMORY_BOUND_FACTOR:g} x RSS after start-up "
        f"+ {MEMORY_ALLOWANCE // MIB} MiB, + {SCHEDULED_RECORD_BYTES / 1024:g} KiB per record a generator scheduled)"
    )
    columns = ("service", "after start-up", "peak", "at end", "scheduled", "bound", "within", "processes", "samples")
    for column in columns:
        table.add_column(column, justify="left" if column == "service" else "right")

    def mib(value: int | None) -> str:
        return "-" if value is None else f"{value / MIB:,.0f} MiB"

    for row in rows:
        within = "-" if row.within is None else ("yes" if row.within else "[bold red]NO[/]")
        table.add_row(
            row.service,
            mib(row.start),
            mib(row.peak),
            mib(row.end),
            f"{row.scheduled:,}" if row.scheduled else "-",
            mib(row.bound),
            within,
            str(row.processes),
            str(row.samples),
        )
    return table


class RssSampler:
    """Samples the RSS of the processes ``pids()`` names (service -> pid) every ``every_s`` in a thread of its own."""

    def __init__(self, pids: Callable[[], Mapping[str, int]], every_s: float) -> None:
        self.pids = pids
        self.every_s = every_s
        self.samples: dict[str, list[RssSample]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        now = time.time()
        for service, pid in dict(self.pids()).items():
            try:
                process = psutil.Process(pid)
                rss, created = process.memory_info().rss, process.create_time()
            except psutil.Error:  # it ended between the listing and the sample
                continue
            self.samples.setdefault(service, []).append(RssSample(now, pid, rss, now - created))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.every_s + 10)

    def rows(self) -> list[MemoryRow]:
        return memory_rows(self.samples)


@dataclass(frozen=True)
class GroupSample:
    at: float  # monotonic seconds
    committed: int  # records the group committed on its topics, all partitions
    lag: int | None  # records not committed yet (None: not measurable at that moment)


@dataclass
class StageRate:
    """The rate one consumer group kept up while behind, and what that is in generator events per second."""

    stage: str
    group: str
    input_records: int  # records of the backlog on its topics
    share: float  # input records per generator event of the backlog
    records_per_s: float | None  # committed records per second while behind (None: never busy two samples running)
    busy_s: float

    @property
    def events_per_s(self) -> float | None:
        if self.records_per_s is None or self.share <= 0:
            return None
        return self.records_per_s / self.share


def busy_rate(samples: Sequence[GroupSample], min_lag: int = BUSY_LAG) -> tuple[float | None, float]:
    """(records per second, seconds) over the intervals between samples when the group had committed before and
    was at least ``min_lag`` behind at both ends (busy throughout); (None, 0) without such an interval."""
    records, seconds = 0, 0.0
    for before, after in itertools.pairwise(samples):
        if before.committed <= 0 or (before.lag or 0) < min_lag or (after.lag or 0) < min_lag:
            continue
        records += after.committed - before.committed
        seconds += after.at - before.at
    return (records / seconds if seconds > 0 else None), seconds


@dataclass
class Calibration:
    """The stages' rates measured over the backlog; ``sustained`` the slowest, in generator events per second."""

    backlog_events: int
    stages: list[StageRate] = field(default_factory=list)

    @property
    def slowest(self) -> StageRate | None:
        measured = [stage for stage in self.stages if stage.events_per_s is not None]
        return min(measured, key=lambda stage: stage.events_per_s or 0.0) if measured else None

    @property
    def sustained(self) -> float | None:
        slowest = self.slowest
        return None if slowest is None else slowest.events_per_s

    def table(self) -> Table:
        table = Table(title=f"Rate each stage sustained over the backlog ({self.backlog_events:,} events)")
        for column in ("stage", "group", "input records", "per event", "records/s while behind", "busy", "events/s"):
            table.add_column(column, justify="left" if column in ("stage", "group") else "right")
        slowest = self.slowest
        for stage in self.stages:
            rate = "-" if stage.records_per_s is None else f"{stage.records_per_s:,.0f}"
            events = "-" if stage.events_per_s is None else f"{stage.events_per_s:,.0f}"
            if stage is slowest:
                events = f"[bold]{events} (slowest)[/]"
            table.add_row(
                stage.stage,
                stage.group,
                f"{stage.input_records:,}",
                f"{stage.share:.2f}",
                rate,
                f"{stage.busy_s:.0f}s",
                events,
            )
        return table


def paced_rates(total: float, settings: GeneratorSettings | None = None) -> dict[str, str]:
    """``GENERATOR_RATE_*`` settings pacing the generator at about ``total`` events per second: every family's
    default rate scaled alike, so the mix stays the generator's."""
    settings = settings or GeneratorSettings()
    scale = total / settings.events_per_second()
    families = ("product_views", "clickstream", "orders", "supplier_invoices", "reference_updates")
    return {f"GENERATOR_RATE_{name.upper()}": f"{getattr(settings, f'rate_{name}') * scale:.6g}" for name in families}
