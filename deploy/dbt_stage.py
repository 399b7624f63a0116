"""The figures of the main job's dbt run, read back from where the jobs leave them.

dbt runs in Airflow (``dbt_build``, triggered by the Asset the day's ``daily_analytics`` run publishes; see
``deploy/airflow_stage.py``): the reference data into ``raw.reference_*`` (Spark, ``load-reference``), one ``dbt
build`` followed per model by Cosmos, then ``dbt source freshness``. Every dbt command records its results in
``audit.dbt_results`` (``dbt/macros/record_results.sql``), labelled with the Airflow run's id: from there this module
reads models built, tests passed and the freshness per source of a ``dbt_build`` run, with the reference rows and
the two headline mart figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg

from deploy.dbt import summarize_build, summarize_freshness

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

SECTION = "dbt (dbt/, through Airflow)"
REFERENCE_TABLES = ("customers", "products", "stores", "suppliers")  # raw.reference_<entity>
# the results of a run's last invocation of each dbt command (a retried task invokes dbt again)
RESULTS_SQL = """
SELECT command, unique_id, status FROM audit.dbt_results results
WHERE run_label = %(run)s AND invocation_id = (
    SELECT invocation_id FROM audit.dbt_results latest
    WHERE latest.run_label = %(run)s AND latest.command = results.command
    ORDER BY recorded_at DESC LIMIT 1
)
"""
# the two headline figures: the latest day's revenue per store, and the on-time rate of delivered shipments
REVENUE_SQL = (
    "SELECT store_id, currency, revenue FROM commerce.mart_store_revenue_daily "
    "WHERE revenue_date = (SELECT max(revenue_date) FROM commerce.mart_store_revenue_daily) ORDER BY store_id"
)
ON_TIME_SQL = "SELECT sum(on_time_count), sum(delivered_count) FROM logistics.mart_delivery_performance"


@dataclass
class DbtFigures:
    """What the stage counted: dbt's results by kind and status, freshness per source, the headline figures."""

    run_id: str = ""  # the dbt_build run the figures are of
    reference_rows: dict[str, int] = field(default_factory=dict)  # raw.reference_<entity> rows loaded
    build: dict[str, int] = field(default_factory=dict)  # "<kind>:<status>" -> count (model:success, test:pass, ...)
    freshness: dict[str, str] = field(default_factory=dict)  # source table -> pass / warn / error
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


def read_figures(env: Mapping[str, str], run_id: str) -> DbtFigures:
    """A ``dbt_build`` run's results (``audit.dbt_results``), the reference rows and the headline figures, from the
    warehouse at ``env``'s ``POSTGRES_DSN``."""
    figures = DbtFigures(run_id=run_id)
    with psycopg.connect(env["POSTGRES_DSN"]) as conn:
        results = conn.execute(RESULTS_SQL.encode(), {"run": run_id}).fetchall()
        build = [{"unique_id": uid, "status": status} for command, uid, status in results if command == "build"]
        fresh = [{"unique_id": uid, "status": status} for command, uid, status in results if command == "freshness"]
        figures.build = summarize_build({"results": build})
        figures.freshness = summarize_freshness({"results": fresh})
        for entity in REFERENCE_TABLES:
            row = conn.execute(f"SELECT count(*) FROM raw.reference_{entity}".encode()).fetchone()
            figures.reference_rows[f"raw.reference_{entity}"] = int(row[0]) if row else 0
        figures.revenue_latest_day = {f"{s} {c}": str(r) for s, c, r in conn.execute(REVENUE_SQL).fetchall()}
        on_time, delivered = conn.execute(ON_TIME_SQL).fetchone() or (None, None)
    figures.on_time_rate = float(on_time) / float(delivered) if delivered else None
    return figures


def report(ctx: RunContext, figures: DbtFigures) -> None:
    """The dbt figures as the report's rows; failures and stale sources as problems."""
    ctx.report.add(SECTION, "figures of run", figures.run_id)
    ctx.report.add(SECTION, "reference rows loaded", ", ".join(f"{t} {n:,}" for t, n in figures.reference_rows.items()))
    ctx.report.add(SECTION, "models built", f"{figures.models_built}")
    ctx.report.add(SECTION, "snapshots", f"{figures.build.get('snapshot:success', 0)}")
    ctx.report.add(SECTION, "tests passed", f"{figures.tests_passed} (data and unit tests)")
    states: dict[str, int] = {}
    for status in figures.freshness.values():
        states[status] = states.get(status, 0) + 1
    ctx.report.add(SECTION, "source freshness", ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    for source, status in sorted(figures.freshness.items()):
        ctx.report.add(SECTION, f"freshness {source}", status)
    revenue = ", ".join(f"{k} {v}" for k, v in figures.revenue_latest_day.items()) or "no orders"
    ctx.report.add(SECTION, "revenue per store, latest day", revenue)
    rate = "no deliveries" if figures.on_time_rate is None else f"{figures.on_time_rate:.1%}"
    ctx.report.add(SECTION, "on-time delivery rate (all routes)", rate)
    if not figures.build or figures.failures:
        ctx.report.problems.append(f"dbt build of {figures.run_id}: {figures.failures or 'no results recorded'}")
    stale = sorted(name for name, status in figures.freshness.items() if status not in ("pass", "warn"))
    if not figures.freshness or stale:
        ctx.report.problems.append(f"dbt source freshness of {figures.run_id}: stale {stale or 'no results recorded'}")
