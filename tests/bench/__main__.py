"""``make bench``: every ``tests/bench/bench_*.py`` against its baseline in the same run.

Each bench module exposes ``run(env) -> list[dict]``, one dict per row, built with ``tests.bench.rows.row``:

* ``name``, ``value``, ``unit``: what is measured;
* ``baseline_name``, ``baseline_value``: the baseline doing the same work in the same run (same unit);
* ``ratio``: ``value / baseline_value``; every goal is a ratio, since absolute rates depend on the machine;
* ``goal_ratio`` (a number, or ``None`` for an informational row), ``goal_op`` (``">="``, or ``"<="`` where
  lower is better, e.g. a latency) and ``goal``, its text (``">= 0.6x"``, ``"-"`` without a goal);
* ``met``: ``ratio goal_op goal_ratio`` (``None`` without a goal), recomputed here for every row with a
  ``goal_ratio``; the few goals the issue states in absolute terms (latency per hop in ms, restart time in s)
  come with their own ``goal`` text and ``met``, and the same-run floor or baseline beside them;
* optionally ``note``: where the time goes when a goal is not met.

Results are printed and written to ``<state>/bench/results.json`` and ``results.md``. With
``FREIGHTLINE_STACK_ENV`` set, the benches run against the stack whose endpoints that file lists (as the tests do),
never starting or stopping it; the results still land in this checkout's state directory. Benches that declare
``RUN_ALONE = True`` (the 5-million-document MongoDB volume) run only when named. Pass bench names (``common``,
``schema_registry``, ...) to run only those. The exit status is 1 when a bench fails to run; a goal not met is
reported in the table, not as a failure.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from tests.bench.rows import met, stack_env

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def by_default() -> list[str]:
    """Every bench but those that declare ``RUN_ALONE = True`` (tens of minutes: run them by name)."""
    return [name for name in available() if "RUN_ALONE = True" not in (HERE / f"bench_{name}.py").read_text()]


def _fmt(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else str(value)


def _ratio(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, int | float) else "-"


def _met(row: dict[str, Any]) -> str:
    return {True: "yes", False: "NO", None: "-"}[row.get("met")]


def table_of(results: list[dict[str, Any]]) -> Table:
    table = Table(title="Freightline benchmarks (same run, same machine)")
    for column in ("benchmark", "value", "baseline", "baseline value", "ratio", "goal", "met"):
        table.add_column(column)
    for row in results:
        table.add_row(
            row["name"],
            f"{_fmt(row['value'])} {row['unit']}",
            row["baseline_name"],
            f"{_fmt(row['baseline_value'])} {row['unit']}",
            _ratio(row["ratio"]),
            row["goal"],
            _met(row),
        )
    return table


def write_results(out: Path, results: list[dict[str, Any]], *, partial: bool = False) -> None:
    """``results.json`` and ``results.md`` in ``out``; after each bench (``partial``) and at the end of the run."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.platform(),
        "load_average": " ".join(f"{value:.1f}" for value in os.getloadavg()),
        "complete": not partial,
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    lines = [
        f"# Freightline benchmarks ({meta['time']}, {meta['machine']}, load average {meta['load_average']}"
        f"{', run in progress' if partial else ''})",
        "",
        "| benchmark | value | baseline | baseline value | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['name']} | {_fmt(r['value'])} {r['unit']} | {r['baseline_name']} | {_fmt(r['baseline_value'])} "
        f"{r['unit']} | {_ratio(r['ratio'])} | {r['goal']} | {_met(r)} |"
        for r in results
    ]
    notes = [f"- **{r['name']}**: {r['note']}" for r in results if r.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    (out / "results.md").write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def _endpoints(stack: Stack, console: Console) -> Iterator[dict[str, str]]:
    """The endpoints of an already running stack named by ``FREIGHTLINE_STACK_ENV`` (left as it is), else this
    checkout's stack, started for the run when it is not running."""
    if os.environ.get("FREIGHTLINE_STACK_ENV"):
        yield stack_env()
        return
    with stack.running(progress=lambda m: console.print(f"[dim]{m}[/dim]")) as env:
        yield env


def main(argv: list[str]) -> int:
    names = argv or by_default()
    unknown = set(names) - set(available())
    if unknown:
        print(f"unknown benches {sorted(unknown)}; available: {available()}", file=sys.stderr)
        return 2
    console = Console()
    stack = Stack(StackContext.create(StackSettings()))
    results: list[dict[str, Any]] = []
    failures = 0
    with _endpoints(stack, console) as env:
        for name in names:
            console.print(f"[bold]bench {name}[/bold]")
            started = time.monotonic()
            try:
                module = importlib.import_module(f"tests.bench.bench_{name}")
                rows = module.run(env)
            except Exception:
                failures += 1
                console.print(f"[red]bench {name} failed[/red]\n{traceback.format_exc()}")
                continue
            for row in rows:
                row["bench"] = name
                if "goal_ratio" in row:  # a ratio goal; absolute goals (latency, restart time) carry their own met
                    row["met"] = met(row["ratio"], row["goal_ratio"], row.get("goal_op", ">="))
            results += rows
            console.print(f"  done in {time.monotonic() - started:.0f}s")
            write_results(stack.ctx.paths.home / "bench", results, partial=True)  # kept if a later bench hangs
    console.print(table_of(results))
    out = stack.ctx.paths.home / "bench"
    write_results(out, results)
    console.print(f"results written to {out / 'results.md'} and {out / 'results.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
