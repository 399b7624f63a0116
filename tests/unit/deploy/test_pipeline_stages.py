"""``execute``'s choice of stages: every stage by default (the CLI's run), or a named subset in ``STAGES``' order."""

from __future__ import annotations

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


def test_an_unknown_stage_is_refused_before_anything_runs(ran: list[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown stages sink; the stages are components, contracts"):
        run(stages=["generator", "sink"])
    assert ran == []
