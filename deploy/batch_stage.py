"""The figures of the main job's daily batch, read back from where the jobs leave them.

The Spark batch of a day runs in Airflow (``daily_analytics``, ``deploy/airflow_stage.py``); ``batch_spark.load_raw``
records per family and day what it read, loaded, rejected and removed as duplicates in ``raw.load_audit``, in the
transaction that writes the day's rows. From the warehouse this module reads those counts, the rows of every table
for the run's days and seed 004's three verification queries (top 10 by ``view_count``), and reconciles the daily
tables with the Flink windows (``deploy.reconcile``). A day's tables hold every event of that day in the lake, this
run's and earlier runs' alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from batch_spark.contract import LAKE_TOPICS
from batch_spark.daily import TABLES
from deploy.reconcile import Reconciliation, reconcile

if TYPE_CHECKING:
    from deploy.pipeline import RunContext

SECTION = "Daily batch (Spark, through Airflow)"
# seed 004's verification queries: the three daily tables of product views, top 10 by view_count
VERIFICATION = ("product_views_daily", "country_views_daily", "referrer_views_daily")
TOP = 10
LAKE_SINKS = ("hdfs", "gcs")  # the main job's sinks writing the lake (``deploy.pipeline.SINKS``)


@dataclass
class BatchFigures:
    """The daily batch of a run: per family what was read and loaded, rows per table, the top-10 queries, the
    reconciliation with the windows per day."""

    days: list[dt.date] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)  # raw rows read per family, over the days
    loaded: dict[str, int] = field(default_factory=dict)  # of them, loaded into raw.<family>
    rejected: dict[str, int] = field(default_factory=dict)  # rejected (broken invariants) into raw.rejected
    duplicates: dict[str, int] = field(default_factory=dict)  # repeated event ids removed
    table_rows: dict[str, int] = field(default_factory=dict)  # rows of the days per table (raw.* and analytics.*)
    top: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # seed 004's queries, per table
    reconciliation: dict[dt.date, Reconciliation] = field(default_factory=dict)
    runs: dict[dt.date, str] = field(default_factory=dict)  # the daily_analytics run of each day
    elapsed_s: float = 0.0  # the days' Spark tasks (one application per day, start-up included)
    only_this_run: bool = False  # the days' lake files hold this run's events only (the reconciliation must hold)

    @property
    def accounted(self) -> bool:
        """Every raw row read is loaded, rejected or a removed duplicate."""
        return all(
            self.read[f] == self.loaded[f] + self.rejected.get(f, 0) + self.duplicates.get(f, 0) for f in self.read
        )


def run_days(start: str, now: dt.datetime) -> list[dt.date]:
    """The UTC days of a run whose simulated time starts at ``start`` (ISO time) and ends before ``now``."""
    first = dt.datetime.fromisoformat(start).astimezone(dt.UTC).date()
    last = now.astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def days_of(ctx: RunContext) -> list[dt.date]:
    """The UTC days of the run's events (from the generator's start to now), else today."""
    now = dt.datetime.now(dt.UTC)
    return run_days(ctx.start, now) if ctx.start else [now.date()]


def _count(conn: Any, table: str, column: str, days: list[dt.date]) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ANY(%s)".encode(), [days]).fetchone()
    return int(row[0]) if row else 0


AUDIT_SQL = (
    "SELECT family, sum(read), sum(loaded), sum(rejected), sum(duplicates) FROM raw.load_audit "
    "WHERE ds = ANY(%s) GROUP BY family ORDER BY family"
)


def read_figures(ctx: RunContext, figures: BatchFigures) -> None:
    """The days' load counts (``raw.load_audit``), rows per table, top-10 queries and reconciliation, into
    ``figures``; whether the lake held this run's events only (rows read = what the HDFS and GCS sinks landed)."""
    with psycopg.connect(ctx.env["POSTGRES_DSN"]) as conn:
        for family, read, loaded, rejected, duplicates in conn.execute(AUDIT_SQL.encode(), [figures.days]):
            figures.read[family], figures.loaded[family] = int(read), int(loaded)
            figures.rejected[family], figures.duplicates[family] = int(rejected), int(duplicates)
        for family in LAKE_TOPICS:
            figures.table_rows[f"raw.{family}"] = _count(conn, f"raw.{family}", "ds", figures.days)
        for table in TABLES:
            figures.table_rows[table.table] = _count(conn, table.table, "report_date", figures.days)
        for name in VERIFICATION:
            figures.top[name] = conn.execute(
                f"SELECT * FROM analytics.{name} WHERE report_date = ANY(%s) "
                f"ORDER BY view_count DESC, report_date LIMIT {TOP}".encode(),
                [figures.days],
            ).fetchall()
    # Rows read from the lake = what the HDFS and GCS sinks landed in this run: no earlier run wrote to these days.
    landed = sum(ctx.figures.landed.get(sink, 0) for sink in LAKE_SINKS)
    figures.only_this_run = sum(figures.read.values()) == landed
    for day in figures.days:
        figures.reconciliation[day] = reconcile(ctx.env, day)


def report(ctx: RunContext, figures: BatchFigures) -> None:
    """The batch figures as the report's rows; what does not hold as problems."""
    days = ", ".join(str(day) for day in figures.days)
    ctx.report.add(SECTION, "days", f"{days}: Spark tasks {figures.elapsed_s:.0f}s (one application per day)")
    for family, read in figures.read.items():
        ctx.report.add(
            SECTION,
            f"raw {family}",
            f"{read:,} read: {figures.loaded[family]:,} loaded, {figures.rejected.get(family, 0):,} rejected, "
            f"{figures.duplicates.get(family, 0):,} duplicates",
        )
    for table, count in figures.table_rows.items():
        ctx.report.add(SECTION, f"rows {table}", f"{count:,}")
    for name, rows in figures.top.items():
        lines = "; ".join(" ".join(str(value) for value in row) for row in rows)
        ctx.report.add(SECTION, f"top {TOP} {name} by view_count", lines or "(no rows)")
    for day, result in figures.reconciliation.items():
        ctx.report.add(SECTION, f"reconciliation {day}", result.summary())
        for difference in result.unexplained[:10]:
            ctx.report.add(SECTION, f"unexplained {day}", difference.describe())
        if result.unexplained and figures.only_this_run:
            ctx.report.problems.append(f"reconciliation {day}: {len(result.unexplained)} unexplained differences")
    if not figures.only_this_run:
        # a run's windows replace (upsert) those of an earlier run of the same span, whose events stay in the lake
        ctx.report.add(
            SECTION,
            "reconciliation verdict",
            "not enforced: the days hold events of earlier runs too, whose windows this run's replaced",
        )
    if not figures.read:
        ctx.report.problems.append(f"daily batch: raw.load_audit holds no load of {days}")
    if not figures.accounted:
        ctx.report.problems.append("daily batch: raw rows read are not all loaded, rejected or duplicates")
