"""Where a bench's time goes: the CPU every process on the machine used over an interval (``/proc/<pid>/stat``
deltas, grouped by stack component), how long their runnable threads waited for a core (the scheduler's run
queue, ``/proc/<pid>/task/*/schedstat``), how busy the machine's cores were (``/proc/stat``) and how often a
runnable task had to wait for one (the kernel's CPU pressure, ``/proc/pressure/cpu``).

``snapshot()`` at both ends of the interval, ``usage(start, end)`` the cores each group used on average: the
Flink TaskManager and JobManager, the two brokers, PostgreSQL, the bench itself (this process and its children),
everything else; ``describe`` one line of it for a row's note.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

CORES = os.cpu_count() or 1

# (group, test on the command line), first match wins
GROUPS = (
    ("Flink TaskManager", "TaskManagerRunner"),
    ("Flink JobManager", "StandaloneSessionClusterEntrypoint"),
    ("remote broker", "remote_kafka.properties"),
    ("broker", "kafka.Kafka"),
)


@dataclass(frozen=True)
class Snapshot:
    at: float
    busy_ticks: float  # the machine's non-idle CPU ticks, all cores
    total_ticks: float
    pressure_us: float  # the kernel's CPU pressure: time some runnable task waited for a core (0: no PSI)
    # pid: (group, CPU seconds, seconds its threads waited for a CPU while runnable)
    processes: dict[int, tuple[str, float, float]] = field(default_factory=dict)


def _machine() -> tuple[float, float]:
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _pressure() -> float:
    """Microseconds some runnable task has waited for a core (``/proc/pressure/cpu``, "some" total; 0 without)."""
    try:
        with open("/proc/pressure/cpu") as pressure:
            return float(pressure.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0.0


def _scheduled(pid: int) -> tuple[float, float]:
    """(CPU seconds, run-queue wait seconds) of every thread of ``pid`` (``/proc/<pid>/task/*/schedstat``)."""
    run = wait = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                fields = schedstat.read().split()
        except OSError:  # ended meanwhile
            continue
        run, wait = run + int(fields[0]) / 1e9, wait + int(fields[1]) / 1e9
    return run, wait


def _parent(stat: str) -> int:
    return int(stat.rsplit(")", 1)[1].split()[1])


def _group(pid: int, cmdline: str, parents: Mapping[int, int], bench: int) -> str:
    if cmdline.startswith("postgres") or "/bin/postgres " in cmdline:  # the server and its backends
        return "PostgreSQL"
    for name, test in GROUPS:
        if test in cmdline:
            return name
    ancestor = pid
    while ancestor > 1:
        if ancestor == bench:
            return "bench"
        ancestor = parents.get(ancestor, 1)
    return "other"


def snapshot() -> Snapshot:
    """Every process's CPU and run-queue wait (all its threads) and the machine's CPU ticks, now."""
    raw: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file, open(f"/proc/{entry}/cmdline", "rb") as cmdline_file:
                command = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace")
                raw[int(entry)] = (stat_file.read(), command)
        except OSError:  # ended meanwhile
            continue
    parents = {pid: _parent(stat) for pid, (stat, _) in raw.items()}
    processes = {}
    for pid, (_, cmdline) in raw.items():
        try:
            run, wait = _scheduled(pid)
        except OSError:  # ended meanwhile
            continue
        processes[pid] = (_group(pid, cmdline, parents, os.getpid()), run, wait)
    busy, total = _machine()
    return Snapshot(time.time(), busy, total, _pressure(), processes)


@dataclass(frozen=True)
class Usage:
    seconds: float
    machine_busy: float  # fraction of all cores busy
    pressure: float  # fraction of the time some runnable task waited for a core
    cores: dict[str, float]  # group: cores used on average
    waiting: dict[str, float]  # group: its runnable threads waiting for a core, on average (0.5: half a core's time)


def usage(start: Snapshot, end: Snapshot) -> Usage:
    """The cores each group used on average between two snapshots (a process started meanwhile counts whole)."""
    seconds = max(end.at - start.at, 1e-9)
    cores: dict[str, float] = {}
    waiting: dict[str, float] = {}
    for pid, (group, run, wait) in end.processes.items():
        before = start.processes.get(pid)
        if before and before[0] == group:
            run, wait = run - before[1], wait - before[2]
        cores[group] = cores.get(group, 0.0) + run / seconds
        waiting[group] = waiting.get(group, 0.0) + wait / seconds
    total = end.total_ticks - start.total_ticks
    busy = (end.busy_ticks - start.busy_ticks) / total if total > 0 else 0.0
    pressure = (end.pressure_us - start.pressure_us) / 1e6 / seconds
    return Usage(seconds, busy, pressure, dict(sorted(cores.items(), key=lambda item: -item[1])), waiting)


def describe(used: Usage) -> str:
    """``the machine's 2 cores were 97% busy (Flink TaskManager 0.90 core, waiting 0.40 for one; broker ...)``: each
    group's cores used and, when it matters, how much of a core its runnable threads spent waiting for one."""
    parts = []
    for group, cores in used.cores.items():
        if cores >= 0.01:
            waited = used.waiting.get(group, 0.0)
            parts.append(
                f"{group} {cores:.2f} core" + (f", {waited:.1f} threads waiting for one" if waited >= 0.05 else "")
            )
    return (
        f"the machine's {CORES} cores were {used.machine_busy:.0%} busy, a runnable task waited for one "
        f"{used.pressure:.0%} of the time ({'; '.join(parts)})"
    )
