"""The one row format of ``make bench`` (see ``tests/bench/__main__.py``): build rows with :func:`row`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def row(
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline_value: float,
    goal_ratio: float | None,
    *,
    goal_op: str = ">=",
    note: str = "",
    bound: str = "",
) -> dict[str, Any]:
    """A result row: ``value`` against ``baseline_value`` measured in the same run, ``ratio = value /
    baseline_value`` and the goal ``ratio {goal_op} goal_ratio`` (``None``: informational, no goal).
    ``met`` is computed here, never written by hand. ``bound`` (where the time goes, from a profile) becomes the
    row's note when the goal is not met."""
    if goal_op not in (">=", "<="):
        raise ValueError(f"goal_op must be '>=' or '<=', not {goal_op!r}")
    ratio = value / baseline_value if baseline_value else float("inf")
    result: dict[str, Any] = {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 3),
        "ratio": round(ratio, 3),
        "goal": "-" if goal_ratio is None else f"{goal_op} {goal_ratio:g}x",
        "goal_ratio": goal_ratio,
        "goal_op": goal_op,
        "met": met(ratio, goal_ratio, goal_op),
    }
    if bound and result["met"] is False:
        note = f"{note} {bound}".strip()
    if note:
        result["note"] = note
    return result


def met(ratio: float, goal_ratio: float | None, goal_op: str = ">=") -> bool | None:
    """Whether ``ratio`` meets the goal; ``None`` for an informational row."""
    if goal_ratio is None:
        return None
    return ratio >= goal_ratio if goal_op == ">=" else ratio <= goal_ratio


def stack_env() -> dict[str, str]:
    """The running stack's endpoints (``FREIGHTLINE_STACK_ENV``, default ``.freightline/stack.env``) over the
    process environment, for running one bench module alone."""
    path = Path(os.environ.get("FREIGHTLINE_STACK_ENV", ".freightline/stack.env"))
    env = dict(os.environ)
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env
