"""A small client of Airflow 3's REST API (``/api/v2``): a bearer token from ``POST /auth/token``, then DAGs, DAG
runs and task instances. Used by the main job's Airflow stage and its tests; the endpoints are the stack's
(``AIRFLOW_API_URL``, ``AIRFLOW_ADMIN_USER``, ``AIRFLOW_ADMIN_PASSWORD_FILE`` in ``stack.env``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
PAGE = 100  # the API's largest page by default


class AirflowApiError(RuntimeError):
    pass


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str | None
    try_number: int
    duration_s: float | None


class AirflowApi:
    def __init__(self, url: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)
        response = self._client.post(f"{self.url}/auth/token", json={"username": user, "password": password})
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"Airflow at {self.url} refused the token for {user}: {response.status_code}")
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AirflowApi:
        """The stack's Airflow, from ``stack.env``'s endpoints."""
        missing = [key for key in ("AIRFLOW_API_URL", "AIRFLOW_ADMIN_PASSWORD_FILE") if not env.get(key)]
        if missing:
            raise AirflowApiError(f"{', '.join(missing)} not set: the stack runs no Airflow")
        password = Path(env["AIRFLOW_ADMIN_PASSWORD_FILE"]).read_text().strip()
        return cls(env["AIRFLOW_API_URL"], env.get("AIRFLOW_ADMIN_USER", "admin"), password)

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, f"{self.url}/api/v2{path}", **kwargs)
        if response.status_code >= 300:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def _poll(self, path: str) -> dict[str, Any] | None:
        """``GET path`` for a polling loop: None when the API server did not answer in time (a busy machine), so
        that the loop asks again until its own deadline."""
        try:
            result: dict[str, Any] = self._call("GET", path)
        except httpx.TimeoutException:
            return None
        return result

    def dag(self, dag_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/dags/{dag_id}")
        return result

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict[str, Any]:
        """The DAG once the DAG processor has parsed it (a new stack parses its DAG folder within seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except AirflowApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: dt.datetime, run_id: str | None = None) -> str:
        """A manual run for ``logical_date``; returns its run id."""
        body: dict[str, Any] = {"logical_date": logical_date.isoformat()}
        if run_id:
            body["dag_run_id"] = run_id
        result = self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return str(result["dag_run_id"])

    def trigger_or_clear(self, dag_id: str, logical_date: dt.datetime, run_id: str) -> str:
        """A run for ``logical_date``: a new one, or, when that date already has one (an earlier trigger, the
        schedule), that run cleared so that all its tasks run again. Returns the run's id."""
        existing = self.runs(
            dag_id, logical_date_gte=logical_date.isoformat(), logical_date_lte=logical_date.isoformat()
        )
        if not existing:
            return self.trigger(dag_id, logical_date, run_id)
        found = str(existing[0]["dag_run_id"])
        self._call("POST", f"/dags/{dag_id}/dagRuns/{found}/clear", json={"dry_run": False})
        return found

    def backfill(self, dag_id: str, first: dt.datetime, last: dt.datetime, reprocess: str = "completed") -> int:
        """A backfill of the logical dates ``first`` .. ``last`` (``airflow backfill create``), run by the scheduler
        one run at a time; ``reprocess``: which existing runs run again (``none``, ``failed``, ``completed``)."""
        body = {
            "dag_id": dag_id,
            "from_date": first.isoformat(),
            "to_date": last.isoformat(),
            "reprocess_behavior": reprocess,
            "max_active_runs": 1,
        }
        return int(self._call("POST", "/backfills", json=body)["id"])

    def wait_backfill(self, backfill_id: int, timeout: float, interval: float = 5.0) -> dict[str, Any]:
        """The backfill once the scheduler completed it (every run ended); ``timeout`` guards a hang."""
        deadline = time.monotonic() + timeout
        while True:
            result = self._poll(f"/backfills/{backfill_id}")
            if result is not None and result["completed_at"]:
                return result
            if time.monotonic() > deadline:
                raise AirflowApiError(f"backfill {backfill_id} not completed after {timeout:.0f} s")
            time.sleep(interval)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def runs(self, dag_id: str, **query: Any) -> list[dict[str, Any]]:
        result = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", **query})
        return list(result["dag_runs"])

    def asset_events(self, source_dag_id: str, source_run_id: str) -> list[dict[str, Any]]:
        """The Asset events a run emitted (newest first), each with the runs it created (``created_dagruns``)."""
        params = {"source_dag_id": source_dag_id, "source_run_id": source_run_id, "order_by": "-timestamp"}
        result = self._call("GET", "/assets/events", params=params)
        return list(result["asset_events"])

    def tasks(self, dag_id: str, run_id: str) -> list[TaskState]:
        found: list[dict[str, Any]] = []
        while True:  # page by page: a Cosmos DAG has a task per dbt node
            params = {"limit": PAGE, "offset": len(found)}
            result = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params=params)
            found += result["task_instances"]
            if not result["task_instances"] or len(found) >= result["total_entries"]:
                break
        return [
            TaskState(ti["task_id"], ti["state"], int(ti["try_number"] or 0), ti.get("duration"))
            for ti in sorted(found, key=lambda ti: (ti.get("start_date") or "", ti["task_id"]))
        ]

    def wait(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        progress: Callable[[dict[str, Any], list[TaskState]], None] | None = None,
        interval: float = 5.0,
    ) -> dict[str, Any]:
        """Poll the run until it succeeds or fails (``timeout`` guards a hang); ``progress`` sees each poll."""
        deadline = time.monotonic() + timeout
        while True:
            run = self._poll(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run is not None and progress is not None:
                with contextlib.suppress(httpx.TimeoutException):  # progress only: the next poll shows it
                    progress(run, self.tasks(dag_id, run_id))
            if run is not None and run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                state = run["state"] if run is not None else "unknown"
                raise AirflowApiError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
            time.sleep(interval)
