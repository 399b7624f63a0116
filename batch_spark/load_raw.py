"""``python -m batch_spark.load_raw --ds D``: the day's raw events from the lake (HDFS) into ``raw.<family>``.

Per family: read ``<lake>/<topic>/dt=D/``, reject rows breaking the contract's invariants into ``raw.rejected``
(with the reason and the source file), keep one row per event id, project to the contract's columns, then swap the
day in one transaction (the family's rows of D, its rejected rows of D and its row of ``raw.load_audit``: rows read,
loaded, rejected, duplicates, unreadable files, together). Re-running a day leaves the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from batch_spark.contract import DAY_COLUMN, Family, families
from batch_spark.job import Context, exit_with, run
from batch_spark.lake import Day, read_day
from batch_spark.warehouse import LOAD_AUDIT_DDL, REJECTED, REJECTED_DDL, ensure, record_load, replace_day


def _audit(fam: Family, day: dt.date, found: Day, counts: dict[str, int]) -> Callable[[Any, dict[str, int]], None]:
    """What the swap's transaction records with the day's rows: the counts into ``raw.load_audit`` (and ``counts``)."""

    def audit(conn: Any, written: dict[str, int]) -> None:
        counts.update(
            read=found.read,
            loaded=written[fam.table],
            rejected=written[REJECTED] - found.unreadable_files,
            duplicates=found.duplicates,
            unreadable_files=found.unreadable_files,
        )
        record_load(conn, fam.name, day, counts)

    return audit


def load_day(spark: Any, ctx: Context, day: dt.date, keep: dict[str, Day] | None = None) -> dict[str, Any]:
    """Load the day's families; with ``keep``, each family's day (its clean rows still cached) is left there for
    the caller (``daily_batch``: the daily tables from the same rows, not read again), who unpersists them."""
    from pyspark.sql import functions as F

    selected = families()
    ensure(ctx.dsn, [*(statement for f in selected for statement in f.ddl()), REJECTED_DDL, LOAD_AUDIT_DDL])
    result: dict[str, Any] = {}
    for fam in selected:
        found = read_day(spark, ctx.lake, fam, day)
        rows = found.clean.select(*(F.expr(c.expression).alias(c.name) for c in fam.columns))
        stage = ctx.stage(rows, fam.table, "load", day, found.clean_count)
        rejected_rows = found.rejected_count + found.unreadable_files
        rejected = ctx.stage(found.rejected, REJECTED, fam.name, day, rejected_rows)
        counts: dict[str, int] = {}
        swaps: list[tuple[str, str, dict[str, object]]] = [
            (fam.table, stage, {}),
            (REJECTED, rejected, {"family": fam.name}),
        ]
        replace_day(ctx.dsn, swaps, DAY_COLUMN, day, _audit(fam, day, found, counts))
        result[fam.name] = counts
        if keep is None:
            found.clean.unpersist()
        else:
            keep[fam.name] = found
    return result


def main(argv: list[str] | None = None) -> int:
    return run("load_raw", __doc__ or "", load_day, argv)


if __name__ == "__main__":
    exit_with(main())
