"""The main job's dbt stage: the reference data into ``raw.reference_*`` (Spark, ``load-reference``), then
``dbt build`` (models, snapshots, unit and data tests) and ``dbt source freshness`` over what the run's earlier
stages loaded; the report shows models built, tests passed, the freshness status and two headline mart figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg

from deploy.dbt import freshness_results, run_dbt, run_results, summarize_build, summarize_freshness
from deploy.spark import run_job

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

SECTION = "dbt (dbt/)"
# the two headline figures: the latest day's revenue per store, and the on-time rate of delivered shipments
REVENUE_SQL = (
    "SELECT store_id, currency, revenue FROM commerce.mart_store_revenue_daily "
    "WHERE revenue_date = (SELECT max(revenue_date) FROM commerce.mart_store_revenue_daily) ORDER BY store_id"
)
ON_TIME_SQL = "SELECT sum(on_time_count), sum(delivered_count) FROM logistics.mart_delivery_performance"


@dataclass
class DbtFigures:
    """What the stage counted: dbt's results by kind and status, freshness per source, the headline figures."""

    reference_rows: dict[str, int] = field(default_factory=dict)  # raw.reference_<entity> rows loaded
    build: dict[str, int] = field(default_factory=dict)  # "<kind>:<status>" -> count (model:success, test:pass, ...)
    build_exit: int = 0
    freshness: dict[str, str] = field(default_factory=dict)  # source table -> pass / warn / error
    freshness_exit: int = 0
    revenue_latest_day: dict[str, str] = field(default_factory=dict)  # "store currency" -> revenue
    on_time_rate: float | None = None  # delivered on time / delivered, every route

    @property
    def models_built(self) -> int:
        return self.build.get("model:success", 0)

    @property
    def tests_passed(self) -> int:
        return self.build.get("test:pass", 0) + self.build.get("unit_test:pass", 0)

    @property
    def failures(self) -> dict[str, int]:
        return {key: n for key, n in self.build.items() if key.split(":")[1] not in ("success", "pass", "no-op")}


def stage_dbt(ctx: RunContext) -> None:
    figures = DbtFigures()
    ctx.figures.dbt = figures
    paths = ctx.stack.ctx.paths
    target = paths.run / "dbt" / "target"
    log = ctx.log("dbt")
    reference = run_job("load-reference", paths, ctx.env, ctx.log("spark-load-reference"))
    figures.reference_rows = {table: int(item["loaded"]) for table, item in reference["tables"].items()}
    build = run_dbt(["build"], ctx.env, target, log)
    figures.build_exit = build.returncode
    figures.build = summarize_build(run_results(target))
    freshness = run_dbt(["source", "freshness"], ctx.env, target, log)
    figures.freshness_exit = freshness.returncode
    figures.freshness = summarize_freshness(freshness_results(target))
    with psycopg.connect(ctx.env["POSTGRES_DSN"]) as conn:
        figures.revenue_latest_day = {f"{s} {c}": str(r) for s, c, r in conn.execute(REVENUE_SQL).fetchall()}
        on_time, delivered = conn.execute(ON_TIME_SQL).fetchone() or (None, None)
    figures.on_time_rate = float(on_time) / float(delivered) if delivered else None

    ctx.report.add(SECTION, "reference rows loaded", ", ".join(f"{t} {n:,}" for t, n in figures.reference_rows.items()))
    ctx.report.add(SECTION, "models built", f"{figures.models_built}")
    ctx.report.add(SECTION, "snapshots", f"{figures.build.get('snapshot:success', 0)}")
    ctx.report.add(SECTION, "tests passed", f"{figures.tests_passed} (data and unit tests)")
    states: dict[str, int] = {}
    for status in figures.freshness.values():
        states[status] = states.get(status, 0) + 1
    ctx.report.add(SECTION, "source freshness", ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    revenue = ", ".join(f"{k} {v}" for k, v in figures.revenue_latest_day.items()) or "no orders"
    ctx.report.add(SECTION, "revenue per store, latest day", revenue)
    rate = "no deliveries" if figures.on_time_rate is None else f"{figures.on_time_rate:.1%}"
    ctx.report.add(SECTION, "on-time delivery rate (all routes)", rate)
    if build.returncode != 0 or figures.failures:
        ctx.report.problems.append(f"dbt build exited {build.returncode}: {figures.failures} (log: {log})")
    stale = sorted(name for name, status in figures.freshness.items() if status not in ("pass", "warn"))
    if freshness.returncode != 0 or stale:
        ctx.report.problems.append(f"dbt source freshness exited {freshness.returncode}; stale: {stale} (log: {log})")
