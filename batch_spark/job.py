"""What both jobs share: the command line (``--ds D`` or ``--start D --end D``, ``--report PATH``), the session,
the JDBC writes through staging tables, and the JSON run report (last line on stdout, and ``--report``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_spark.lake import Lake
from batch_spark.settings import SparkJobSettings
from batch_spark.warehouse import create_stage, jdbc_target, stage_name
from services.common.entrypoint import run_entrypoint
from services.common.settings import GcsSettings, HdfsSettings, MongoSettings, PostgresSettings

Body = Callable[[Any, "Context", dt.date], dict[str, Any]]


class Context:
    def __init__(
        self,
        settings: SparkJobSettings,
        hdfs: HdfsSettings,
        gcs: GcsSettings,
        mongo: MongoSettings,
        postgres: PostgresSettings,
    ) -> None:
        self.settings = settings
        self.gcs = gcs
        self.lake = Lake.of(settings, hdfs, gcs, mongo)
        self.analytics_root = f"{hdfs.namenode_uri.rstrip('/')}/{settings.analytics_root.strip('/')}"
        self.dsn = postgres.dsn
        self.jdbc_url, self.jdbc_properties = jdbc_target(postgres.dsn)

    def stage(self, frame: Any, table: str, label: str, day: dt.date, rows: int | None = None) -> str:
        """Write ``frame`` into a fresh staging copy of ``table`` (nothing to write when ``rows`` is 0); returns the
        stage's name."""
        stage = stage_name(table, label, day)
        create_stage(self.dsn, table, stage)
        if rows != 0:
            frame.write.jdbc(self.jdbc_url, stage, mode="append", properties=self.jdbc_properties)
        return stage


def days(args: argparse.Namespace) -> list[dt.date]:
    if args.ds is not None:
        return [args.ds]
    if args.start is None or args.end is None or args.end < args.start:
        raise SystemExit("give --ds D, or --start D --end D (end not before start)")
    return [args.start + dt.timedelta(days=n) for n in range((args.end - args.start).days + 1)]


def parser(description: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--ds", type=dt.date.fromisoformat, help="the day (UTC event date), YYYY-MM-DD")
    result.add_argument("--start", type=dt.date.fromisoformat, help="first day of a backfill")
    result.add_argument("--end", type=dt.date.fromisoformat, help="last day of a backfill (inclusive)")
    result.add_argument("--report", type=Path, help="also write the JSON run report here")
    return result


def run(name: str, description: str, body: Body, argv: list[str] | None = None) -> int:
    args = parser(description).parse_args(argv)
    selected = days(args)

    def main() -> int:
        from batch_spark.session import spark_session

        context = Context(SparkJobSettings(), HdfsSettings(), GcsSettings(), MongoSettings(), PostgresSettings())
        started = time.monotonic()
        spark = spark_session(context.settings, context.gcs, f"freightline-{name}")
        try:
            results = {str(day): body(spark, context, day) for day in selected}
        finally:
            spark.stop()
        report = {"job": name, "days": results, "duration_s": round(time.monotonic() - started, 3)}
        text = json.dumps(report, sort_keys=True)
        if args.report is not None:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(text + "\n")
        print(text, flush=True)
        return 0

    return run_entrypoint(main)


def exit_with(code: int) -> None:
    sys.exit(code)
