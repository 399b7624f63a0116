"""The Flink window jobs in a chaos run, when the stack has a Flink cluster (``FLINK_REST_URL``).

The five window jobs run as one Flink job (``stream_processors/window_jobs.py``), the main job's way, on the run's
own topics (the run's prefix: its raw sources, aggregates and late-events topics), consumer groups (also their
transactional ids) and PostgreSQL schema (``chaos_<run>``), with the stage's settings (no idle-source timeout; a
short checkpoint interval, so a run's output commits often). Their Kafka clients reach the run's broker through its
Toxiproxy listener and the registry through its proxy, so the broker's SIGKILL, the toxics on its link and the
registry's outage reach them. Their own fault is a job failure that touches no server of the stack: the job is
cancelled and submitted again from its latest retained checkpoint (the cluster retains checkpoints on cancel), as a
restart after a crash of the job's process would; a cancel aborts the open Kafka transactions, and the restored
sinks commit what the checkpoint prepared, so nothing may be lost or doubled.

At the end, once every job's group has committed its whole source, the job is stopped with a savepoint and
``drain`` (every open window fires, as in the main job's stage), and each job's windows are counted: the windows
its oracle computes from the events the run produced on its source (minus those it reported late, the stage's
rule) against its committed Kafka aggregates (``read_committed``) and its PostgreSQL rows: expected, delivered,
lost, duplicated, and delivered with other values.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.processes import group_behind, readable_ends, wait_until
from deploy.stream_stage import STAGE_IDLE_TIMEOUT_MS, WindowJobFigures, window_figures
from stream_processors.flink_sql import WindowJobSettings


class Noted(Protocol):
    note: str


CHECKPOINT_INTERVAL_MS = 2_000
READ_TIMEOUT_S = 600.0  # hang guard: the jobs read a run's events in well under a minute once the run is over
CHECKPOINT_WAIT_S = 120.0  # longest a job restart waits for the job's first completed checkpoint


@dataclass(frozen=True)
class WindowCount:
    """One window job's windows at one destination against its oracle."""

    job: str
    destination: str
    expected: int  # windows the oracle computes from the run's events
    delivered: int  # of them, found at the destination
    lost: int
    duplicated: int  # committed more than once (Kafka)
    differing: int  # found with other values than the oracle's
    late: int  # events the job reported late (on its late topic; not in the oracle's input)


def window_counts(name: str, settings: WindowJobSettings, figures: WindowJobFigures) -> list[WindowCount]:
    late = figures.late_events
    return [
        WindowCount(
            name,
            settings.sink_topic,
            figures.windows_expected,
            figures.windows_expected - figures.kafka_missing,
            figures.kafka_missing,
            figures.kafka_duplicates,
            figures.kafka_differing + figures.kafka_unexpected,
            late,
        ),
        WindowCount(
            name,
            settings.postgres_table,
            figures.windows_expected,
            figures.postgres_rows,
            figures.postgres_missing,
            0,  # upserts keyed by window: a row cannot be doubled
            figures.postgres_differing,
            late,
        ),
    ]


class FlinkStage:
    """The window jobs of one chaos run on the stack's Flink cluster (see the module's docstring)."""

    def __init__(self, stack: StackContext, rest_url: str, run_id: str, topic: Callable[[str], str]) -> None:
        self.stack = stack
        self.rest_url = rest_url
        self.names = list(flink_jobs.JOBS)
        self.schema = f"chaos_{run_id}"
        self.topic = topic
        self.job_id: str | None = None
        self.submitted: list[str] = []
        self.working: threading.Thread | None = None  # a submission or restart under way
        self.failure: Exception | None = None
        self.env = {key: value for name in self.names for key, value in self._job_env(name).items()}

    def _job_env(self, name: str) -> dict[str, str]:
        spec = flink_jobs.job(name)
        base = flink_jobs.job_settings(spec, {})
        table = base.postgres_table.rpartition(".")[2]
        values = {
            "SOURCE_TOPIC": self.topic(base.source_topic),
            "SINK_TOPIC": self.topic(base.sink_topic),
            "LATE_TOPIC": self.topic(base.late_topic),
            "GROUP_ID": self.topic(base.group_id),
            "POSTGRES_TABLE": f"{self.schema}.{table}",
            "IDLE_TIMEOUT_MS": str(STAGE_IDLE_TIMEOUT_MS),
            "CHECKPOINT_INTERVAL_MS": str(CHECKPOINT_INTERVAL_MS),
        }
        return {spec.settings_prefix + key: value for key, value in values.items()}

    def settings(self, name: str) -> WindowJobSettings:
        return flink_jobs.job_settings(flink_jobs.job(name), self.env)

    def groups(self) -> list[tuple[str, str]]:
        """(consumer group, source topic) of every job."""
        return [(s.group_id, s.source_topic) for s in map(self.settings, self.names)]

    def submit(self, service_env: Mapping[str, str], from_checkpoint: str | None = None) -> str:
        """Submit the jobs as one Flink job with the services' endpoints (``service_env``: the broker and registry
        behind their proxies) and the run's settings."""
        self.job_id = flink_jobs.submit(
            self.stack, self.names, self.rest_url, {**service_env, **self.env}, from_savepoint=from_checkpoint
        )
        self.submitted.append(self.job_id)
        return self.job_id

    def latest_checkpoint(self, timeout_s: float = CHECKPOINT_WAIT_S) -> str:
        """The external path of the job's latest completed checkpoint (retained: it survives the job's end),
        waiting for a first one."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = httpx.get(f"{self.rest_url}/jobs/{self.job_id}/checkpoints", timeout=10)
            completed = (response.json().get("latest") or {}).get("completed") if response.status_code == 200 else None
            if completed and completed.get("external_path"):
                return str(completed["external_path"])
            if time.monotonic() > deadline:
                raise flink_jobs.FlinkError(f"job {self.job_id} completed no checkpoint within {timeout_s:.0f} s")
            time.sleep(0.5)

    def start(self, service_env: Mapping[str, str]) -> None:
        """``submit`` in a thread of its own (a submission takes tens of seconds: the run's broker, backlog and
        services start meanwhile); ``wait`` waits for it."""
        self._background(lambda: self.submit(service_env))

    def restart(self, service_env: Mapping[str, str], fault: Noted) -> None:
        """Cancel the job and submit it again from its latest retained checkpoint, in a thread of its own (the
        run's other faults and cures keep their moments); the fault's note says how it went. ``finish`` waits."""

        def restart() -> None:
            try:
                fault.note = self._restart(service_env)
            except Exception as error:
                fault.note = f"restart failed: {error}"
                raise

        self._background(restart)
        fault.note = "cancelling, to resubmit from the latest checkpoint"

    def _background(self, action: Callable[[], object]) -> None:
        self.wait()

        def run() -> None:
            try:
                action()
            except Exception as error:  # raised again by wait
                self.failure = error

        self.working = threading.Thread(target=run, name="flink-stage", daemon=True)
        self.working.start()

    def wait(self) -> None:
        """Until a submission or restart under way has ended; raises its error if it failed."""
        if self.working is not None:
            self.working.join()
            self.working = None
        if self.failure is not None:
            raise self.failure

    def _restart(self, service_env: Mapping[str, str]) -> str:
        assert self.job_id is not None
        started = time.monotonic()
        self.latest_checkpoint()  # there is one to resume from
        old = self.job_id
        flink_jobs.cancel(self.rest_url, old)
        if not wait_until(lambda: self._state(old) not in flink_jobs.ACTIVE_STATES, CHECKPOINT_WAIT_S):
            raise flink_jobs.FlinkError(f"job {old} did not end within {CHECKPOINT_WAIT_S:.0f} s of cancelling")
        flink_jobs.record_stopped(service_env, [old])  # on purpose: FreightlineFlinkJobsLost leaves it alone
        # the latest once the job has ended: a checkpoint completing while it was cancelled committed its output
        checkpoint = self.latest_checkpoint()
        new = self.submit(service_env, from_checkpoint=checkpoint)
        return (
            f"job {old[:8]} cancelled, resubmitted as {new[:8]} from checkpoint "
            f"{checkpoint.rstrip('/').rpartition('/')[2]} in {time.monotonic() - started:.0f}s"
        )

    def _state(self, job_id: str) -> str:
        return str(flink_jobs.job_details(self.rest_url, job_id)["state"])

    def finish(self, local_config: Mapping[str, Any], service_env: Mapping[str, str]) -> None:
        """Once every job's group has committed its whole source, stop the job with a savepoint and ``drain``."""
        self.wait()
        assert self.job_id is not None
        ends = self._readable_ends(local_config)
        read = wait_until(lambda: self.behind(local_config, ends) == 0, READ_TIMEOUT_S)
        if not read:
            raise flink_jobs.FlinkError(f"the window jobs did not read their sources within {READ_TIMEOUT_S:.0f} s")
        flink_jobs.savepoint(self.rest_url, self.job_id, stop=True, drain=True)
        flink_jobs.wait_finished(self.rest_url, self.job_id)
        flink_jobs.record_stopped(service_env, [self.job_id])

    def _readable_ends(self, local_config: Mapping[str, Any]) -> dict[str, dict[tuple[str, int], int]]:
        """Per group, where its source's records a ``read_committed`` reader receives end now."""
        readable = readable_ends(local_config, sorted({source for _, source in self.groups()}))
        return {group: {k: end for k, end in readable.items() if k[0] == source} for group, source in self.groups()}

    def behind(
        self, local_config: Mapping[str, Any], ends: Mapping[str, Mapping[tuple[str, int], int]] | None = None
    ) -> int:
        """Records the jobs' groups have not committed short of ``ends`` (default: their sources' readable ends)."""
        ends = ends if ends is not None else self._readable_ends(local_config)
        return sum(group_behind(local_config, group, group_ends) for group, group_ends in ends.items())

    def count(self, read_env: Mapping[str, str], dsn: str) -> list[WindowCount]:
        """Every job's windows against its oracle (``read_env``: where the harness reads the run's topics)."""
        counts = []
        for name in self.names:
            settings = self.settings(name)
            figures = window_figures(read_env, name, settings, None, None, None, dsn)
            counts += window_counts(name, settings, figures)
        return counts

    def close(self, env: Mapping[str, str], keep_data: bool) -> None:
        with contextlib.suppress(Exception):
            self.wait()
        for job_id in self.submitted:
            with contextlib.suppress(Exception):
                if self._state(job_id) in flink_jobs.ACTIVE_STATES:
                    flink_jobs.cancel(self.rest_url, job_id)
                    flink_jobs.record_stopped(env, [job_id])
        dsn = env.get("POSTGRES_DSN")
        if keep_data or not dsn:
            return
        import psycopg

        with contextlib.suppress(Exception), psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE".encode())
