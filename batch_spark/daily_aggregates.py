"""``python -m batch_spark.daily_aggregates --ds D``: the day's analytics tables from the lake into PostgreSQL
``analytics.*`` and into Parquet (``<analytics root>/<table>/ds=D/``).

The raw families are read as ``load_raw`` reads them (the same checks and deduplication, ``batch_spark.lake``), so
the tables agree with ``raw.*``. Each table's day is swapped in one transaction; the Parquet partition of D is
overwritten alone (dynamic partition overwrite). Re-running a day leaves the same rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from batch_spark.contract import family
from batch_spark.daily import TABLES
from batch_spark.job import Context, exit_with, run
from batch_spark.lake import Day, delete, read_day
from batch_spark.warehouse import ensure, replace_day

REPORT_DATE = "report_date"


def aggregate_day(spark: Any, ctx: Context, day: dt.date, read_days: dict[str, Day] | None = None) -> dict[str, Any]:
    """The day's tables; the families' days are read from the lake unless ``read_days`` holds them already (read by
    ``load_raw`` in the same application: the same rows)."""
    from pyspark.sql import functions as F

    ensure(ctx.dsn, [table.create_sql() for table in TABLES])
    read: dict[str, int] = {}
    for name in sorted({source for table in TABLES for source in table.sources}):
        found = (read_days or {}).get(name) or read_day(spark, ctx.lake, family(name), day)
        found.clean.createOrReplaceTempView(name)
        read[name] = found.clean_count
    written: dict[str, int] = {}
    for table in TABLES:
        rows = spark.sql(table.query).select(*(name for name, _ in table.columns)).persist()
        stage = ctx.stage(rows, table.table, "daily", day)
        written.update(replace_day(ctx.dsn, [(table.table, stage, {})], REPORT_DATE, day))
        folder = f"{ctx.analytics_root}/{table.name}"
        # A day without rows writes no partition: remove the one an earlier run may have left.
        delete(spark, f"{folder}/ds={day}")
        rows.withColumn("ds", F.col(REPORT_DATE)).write.mode("overwrite").partitionBy("ds").parquet(folder)
        rows.unpersist()
    return {"rows_read": read, "rows_written": written}


def main(argv: list[str] | None = None) -> int:
    return run("daily_aggregates", __doc__ or "", aggregate_day, argv)


if __name__ == "__main__":
    exit_with(main())
