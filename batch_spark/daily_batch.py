"""``python -m batch_spark.daily_batch --ds D``: ``load_raw`` then ``daily_aggregates`` for each day, in one Spark
application (one JVM start-up instead of two), the daily tables computed from the rows the load read (each family's
day is read from the lake once); the report holds both jobs' figures per day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from batch_spark.daily_aggregates import aggregate_day
from batch_spark.job import Context, exit_with, run
from batch_spark.lake import Day
from batch_spark.load_raw import load_day


def batch_day(spark: Any, ctx: Context, day: dt.date) -> dict[str, Any]:
    read: dict[str, Day] = {}
    try:
        loaded = load_day(spark, ctx, day, keep=read)
        return {"load_raw": loaded, "daily_aggregates": aggregate_day(spark, ctx, day, read)}
    finally:
        for found in read.values():
            found.clean.unpersist()


def main(argv: list[str] | None = None) -> int:
    return run("daily_batch", __doc__ or "", batch_day, argv)


if __name__ == "__main__":
    exit_with(main())
