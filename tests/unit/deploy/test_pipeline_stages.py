"""``execute``'s choice of stages: every stage by default (the CLI's run), or a named subset in ``STAGES``' order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deploy import pipeline


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    stages = [(name, lambda _ctx, name=name: names.append(name)) for name, _ in pipeline.STAGES]
    monkeypatch.setattr(pipeline, "STAGES", stages)
    return names


def run(**kwargs: Any) -> pipeline.Report:
    stack: Any = None  # the recording stages never touch it
    return pipeline.execute(stack, {}, events=10, seed=1, **kwargs)


def test_every_stage_runs_by_default(ran: list[str]) -> None:
    assert run().problems == []
    assert ran == [name for name, _ in pipeline.STAGES]


def test_a_subset_runs_in_the_job_order(ran: list[str]) -> None:
    run(stages=["sinks", "generator", "mirror"])
    assert ran == ["generator", "mirror", "sinks"]


def test_the_callers_stages_run_after_the_chosen_ones_with_the_same_run(ran: list[str]) -> None:
    contexts: list[Any] = []

    def batch(ctx: Any) -> None:
        ran.append("batch")
        contexts.append(ctx)

    def failing(ctx: Any) -> None:
        contexts.append(ctx)
        raise RuntimeError("no warehouse")

    report = run(stages=["sinks", "generator"], then=[("batch", batch), ("failing", failing), ("batch", batch)])
    assert ran == ["generator", "sinks", "batch"]  # a failed stage ends the run, as in the main job
    assert contexts[0] is contexts[1] and contexts[0].report is report
    assert report.problems == ["stage failing failed: RuntimeError: no warehouse"]


def test_an_unknown_stage_is_refused_before_anything_runs(ran: list[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown stages sink; the stages are components, contracts"):
        run(stages=["generator", "sink"])
    assert ran == []


class Process:
    """A service process as ``_wait_caught_up`` sees it: alive or ended with a code."""

    def __init__(self, returncode: int | None) -> None:
        self.process = SimpleNamespace(returncode=returncode)
        self.log = Path(f"run-{returncode}.log")

    def alive(self) -> bool:
        return self.process.returncode is None


def test_a_stage_stops_waiting_when_a_service_process_ended() -> None:
    report = pipeline.Report()
    ctx: Any = SimpleNamespace(report=report)
    processes: Any = {"running": Process(None), "refused": Process(1)}
    checks: list[int] = []

    def caught_up() -> bool:
        checks.append(1)
        return False

    assert pipeline._wait_caught_up(ctx, processes, caught_up, timeout=600) is False
    assert len(checks) <= 2  # it stopped waiting at the first look, not after the timeout
    assert report.problems == ["refused ended before catching up (exit 1); see run-1.log"]


def test_a_stage_waits_until_caught_up_while_its_processes_run() -> None:
    report = pipeline.Report()
    ctx: Any = SimpleNamespace(report=report)
    checks = iter([False, True, True])
    processes: Any = {"running": Process(None)}
    assert pipeline._wait_caught_up(ctx, processes, lambda: next(checks), timeout=600) is True
    assert report.problems == []
