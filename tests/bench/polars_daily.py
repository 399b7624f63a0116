"""The daily tables computed with Polars over the same lake files: the single-machine peer of ``bench_spark``.

Runs in the Spark environment (``deploy/bootstrap/envs/spark``, which also holds Polars):
``python tests/bench/polars_daily.py CONFIG.json``, CONFIG ``{"root": local lake root, "day": "YYYY-MM-DD",
"families": {family: topic folder}}``. Per family it reads the day's Avro files (``<root>/<topic>/dt=D/**``) with
Polars' own Avro reader (fastavro for the clickstream and the shipment events, which Polars cannot read), keeps the
events of the day once per event id (the first), and computes the seven tables
``batch_spark.daily`` defines, with the same definitions (the contract checks are left out: generated data breaks
none). Prints one JSON line: rows per table, seconds, the tables' key figures for a cross-check.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fastavro
import polars as pl

# Polars' Avro reader does not read the clickstream (a union of records: ``details``) nor the shipment events (it
# stops with "OutOfSpec", projected or not): those families' files are decoded with fastavro, keeping the fields the
# tables use.
DECODED = {
    "clickstream": ("service", "event_type"),
    "shipment_events": (
        "shipment_id",
        "status",
        "route_id",
        "carrier",
        "estimated_delivery_date",
        "actual_delivery_date",
    ),
}


def _decoded(path: Path, fields: tuple[str, ...]) -> pl.DataFrame:
    with path.open("rb") as handle:
        rows = [
            {
                "metadata": {
                    "event_id": str(record["metadata"]["event_id"]),
                    "event_time": record["metadata"]["event_time"],
                },
                **{name: record[name] for name in fields},
            }
            for record in cast("Iterator[dict[str, Any]]", fastavro.reader(handle))
        ]
    return pl.DataFrame(rows, infer_schema_length=None)


def _read(root: Path, family: str, topic: str, day: dt.date) -> pl.DataFrame:
    files = sorted((root / topic / f"dt={day}").glob("hour=*/*.avro"))
    fields = DECODED.get(family)
    frame = pl.concat(
        [pl.read_avro(path) if fields is None else _decoded(path, fields) for path in files], how="vertical"
    )
    event_id = pl.col("metadata").struct.field("event_id")
    event_time = pl.col("metadata").struct.field("event_time")
    return frame.filter(event_time.dt.date() == day).unique(subset=event_id, keep="first", maintain_order=True)


def _rate(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return (part.cast(pl.Float64) / whole).round(6)


def tables(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    views, orders, clicks = frames["product_views"], frames["orders"], frames["clickstream"]
    shipments, payments = frames["shipment_events"], frames["supplier_payments"]
    event_time = pl.col("metadata").struct.field("event_time")
    placed = orders.filter(pl.col("status") == "PLACED")
    delivered = shipments.filter(pl.col("status") == "DELIVERED")
    on_time = pl.col("actual_delivery_date") <= pl.col("estimated_delivery_date")
    delay = (pl.col("paid_date") - pl.col("due_date")).dt.total_days()
    return {
        "product_views_daily": views.group_by("product_id").agg(
            pl.len().alias("view_count"),
            pl.col("device_id").n_unique().alias("unique_visitors"),
            event_time.max().alias("last_view_time"),
        ),
        "country_views_daily": views.group_by("store_id").agg(
            pl.len().alias("view_count"), pl.col("device_id").n_unique().alias("unique_visitors")
        ),
        "referrer_views_daily": views.group_by(pl.col("referrer_url").fill_null("(direct)")).agg(
            pl.len().alias("view_count")
        ),
        "order_revenue_daily": placed.group_by("store_id", "currency").agg(
            pl.col("order_id").n_unique().alias("order_count"),
            pl.col("line_items").list.eval(pl.element().struct.field("quantity")).list.sum().sum().alias("item_count"),
            pl.col("order_total").sum().alias("revenue"),
        ),
        "shipment_on_time_daily": delivered.group_by("route_id", "carrier")
        .agg(
            pl.col("shipment_id").n_unique().alias("delivered_count"),
            pl.col("shipment_id").filter(on_time).n_unique().alias("on_time_count"),
        )
        .with_columns(_rate(pl.col("on_time_count"), pl.col("delivered_count")).alias("on_time_rate")),
        "supplier_payment_delay_daily": payments.group_by("supplier_id").agg(
            pl.len().alias("payment_count"),
            delay.sum().alias("total_delay_days"),
            delay.max().alias("max_delay_days"),
            delay.mean().round(2).alias("avg_delay_days"),
        ),
        "clickstream_errors_daily": clicks.group_by("service")
        .agg(pl.len().alias("event_count"), (pl.col("event_type") == "ERROR").sum().alias("error_count"))
        .with_columns(_rate(pl.col("error_count"), pl.col("event_count")).alias("error_rate")),
    }


def main(config_path: str) -> None:
    config: dict[str, Any] = json.loads(Path(config_path).read_text())
    root, day = Path(config["root"]), dt.date.fromisoformat(config["day"])
    started = time.monotonic()
    frames = {family: _read(root, family, topic, day) for family, topic in config["families"].items()}
    result = tables(frames)
    elapsed = time.monotonic() - started
    figures = {
        "rows": {name: frame.height for name, frame in result.items()},
        "views": int(result["product_views_daily"]["view_count"].sum()),
        "delivered": int(result["shipment_on_time_daily"]["delivered_count"].sum()),
        "on_time": int(result["shipment_on_time_daily"]["on_time_count"].sum()),
        "orders": int(result["order_revenue_daily"]["order_count"].sum()),
        "seconds": round(elapsed, 3),
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
