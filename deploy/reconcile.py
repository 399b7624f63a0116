"""Reconciliation of the daily batch with the streaming windows: ``freightline reconcile --ds D``.

For each figure both sides count, per key, the day's value in the daily table (``analytics.*``, Spark) is compared
with the sum of the same day's windows in the window job's table (``streaming.*``, Flink; windows are aligned to the
day, so a day's windows are those starting in it). The stream counts an event in no window when it arrives after its
window closed, and reports it on the late-events topic (``aggregates.late_events.v1``, per job) instead; the batch,
reading the lake a day later, counts it. So for every key::

    daily - sum of windows = the late events' share

where a late event's share is what it adds to the daily figure, computed from its row in the raw table the batch
loaded (``raw.<family>``, joined by event id). Keys without late events match exactly; a difference the late events
do not account for is *unexplained* and fails the check.

A lake day may hold more than one pipeline run's events (a stack used again without ``--fresh``): the lake keeps
every run's files while a later run's windows replace (upsert) an earlier run's windows of the same span, so the
daily tables count events no window holds any more. Such a day's totals show it: for some figure the day's daily
total exceeds the windows' total plus the late events' share (the *lake surplus*). ``--enforce fresh-lake`` (the
``daily_analytics`` DAG's setting) fails only on a day without a lake surplus and reports the others; ``--enforce
always`` (the default) fails on every unexplained difference.

What is compared (a late event's share in brackets):

- ``product_views_daily.view_count`` per product with ``product_views_1m.view_count`` (1 view);
- ``order_revenue_daily`` orders, items and revenue per store and currency with ``store_order_revenue_5m`` (its
  order, ``PLACED`` events only: 1, its units, its total);
- ``shipment_on_time_daily.delivered_count``, summed over carriers, per route with
  ``route_shipment_delays_1h.delivered_shipment_count`` (its shipment, ``DELIVERED`` events only).

The windows' table and late topic of each job are the job's own settings (``<JOB>_POSTGRES_TABLE``,
``<JOB>_LATE_TOPIC``, ``<JOB>_SOURCE_TOPIC``), read from the same environment as the jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer

from deploy import flink_jobs

Number = int | Decimal


@dataclass(frozen=True)
class Measure:
    """Figures a daily table and a window job both count, per key."""

    name: str
    job: str  # the window job (``deploy.flink_jobs.JOBS``)
    daily_table: str
    key: tuple[str, ...]  # key columns, named alike in the daily table, the windows' table and the raw table
    daily: tuple[str, ...]  # per figure: SQL aggregate over the daily table's rows of the day
    windows: tuple[str, ...]  # per figure: SQL aggregate over the day's windows
    raw_table: str
    late: tuple[str, ...]  # per figure: SQL aggregate over the raw rows of the late events (the share)
    late_filter: str = "TRUE"  # which raw rows count at all (the others add nothing)
    figures: tuple[str, ...] = ()


UNITS = "(SELECT coalesce(sum((line ->> 'quantity')::bigint), 0) FROM jsonb_array_elements(line_items) line)"

MEASURES: tuple[Measure, ...] = (
    Measure(
        "product views",
        "product_views",
        "analytics.product_views_daily",
        ("product_id",),
        ("sum(view_count)",),
        ("sum(view_count)",),
        "raw.product_views",
        ("count(*)",),
        figures=("views",),
    ),
    Measure(
        "order revenue",
        "store_order_revenue",
        "analytics.order_revenue_daily",
        ("store_id", "currency"),
        ("sum(order_count)", "sum(item_count)", "sum(revenue)"),
        ("sum(order_count)", "sum(item_count)", "sum(revenue)"),
        "raw.orders",
        ("count(DISTINCT order_id)", f"sum({UNITS})", "sum(order_total)"),
        late_filter="status = 'PLACED'",
        figures=("orders", "items", "revenue"),
    ),
    Measure(
        "delivered shipments",
        "route_shipment_delays",
        "analytics.shipment_on_time_daily",
        ("route_id",),
        ("sum(delivered_count)",),
        ("sum(delivered_shipment_count)",),
        "raw.shipment_events",
        ("count(DISTINCT shipment_id)",),
        late_filter="status = 'DELIVERED'",
        figures=("delivered",),
    ),
)


@dataclass(frozen=True)
class Difference:
    """One key's figure where the daily table and the windows differ."""

    measure: str
    figure: str
    key: tuple[str, ...]
    daily: Number
    windows: Number
    late: Number  # the late events' share

    @property
    def unexplained(self) -> Number:
        return self.daily - self.windows - self.late

    def describe(self) -> str:
        verdict = "explained" if self.unexplained == 0 else f"UNEXPLAINED {self.unexplained}"
        return (
            f"{self.measure} {'|'.join(self.key)} {self.figure}: daily {self.daily}, windows {self.windows}, "
            f"difference {self.daily - self.windows}, late events {self.late} [{verdict}]"
        )


@dataclass(frozen=True)
class Total:
    """One figure of a measure summed over every key of the day."""

    measure: str
    figure: str
    daily: Number
    windows: Number
    late: Number

    @property
    def lake_surplus(self) -> Number:
        """What the day's lake holds beyond what the stream counted (windows and late events)."""
        return self.daily - self.windows - self.late

    def describe(self) -> str:
        return (
            f"{self.measure} {self.figure}: daily {self.daily}, windows {self.windows}, late events {self.late}, "
            f"lake surplus {self.lake_surplus}"
        )


@dataclass
class Reconciliation:
    """The comparison of one day: keys compared, those that differ (each with the late events' share)."""

    day: dt.date
    keys: dict[str, int] = field(default_factory=dict)  # keys compared per measure
    late_events: dict[str, int] = field(default_factory=dict)  # the day's late events reported per job
    late_outside_lake: dict[str, int] = field(default_factory=dict)  # of them, ids the raw table does not hold
    differences: list[Difference] = field(default_factory=list)
    totals: list[Total] = field(default_factory=list)  # per measure and figure, over every key

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if d.unexplained != 0]

    @property
    def ok(self) -> bool:
        return not self.unexplained

    @property
    def lake_surplus(self) -> list[Total]:
        """The figures whose daily total exceeds what the stream counted: the lake holds events of earlier runs."""
        return [t for t in self.totals if t.lake_surplus > 0]

    def enforced(self, enforce: Enforce) -> bool:
        """Whether unexplained differences fail the check under ``enforce``."""
        return enforce is Enforce.ALWAYS or not self.lake_surplus

    def summary(self) -> str:
        keys = ", ".join(f"{name} {count:,} keys" for name, count in self.keys.items())
        late = sum(self.late_events.values())
        return (
            f"{self.day}: {keys}; {len(self.differences):,} differences, {late:,} late events, "
            f"{len(self.unexplained):,} unexplained"
        )


class Enforce(StrEnum):
    ALWAYS = "always"  # every unexplained difference fails
    FRESH_LAKE = "fresh-lake"  # only on a day whose lake holds no more than the stream counted


def _zero(value: Any) -> Number:
    return 0 if value is None else value  # type: ignore[no-any-return]


def late_event_ids(env: Mapping[str, str], job_name: str, day: dt.date) -> set[str]:
    """The ids of the events of ``day`` the window job reported late (its late topic, committed records)."""
    from stream_processors.oracle import read_committed

    spec = flink_jobs.job(job_name)
    settings = flink_jobs.job_settings(spec, env)
    records = read_committed(env, settings.late_topic)
    return {
        str(value["metadata"]["event_id"])
        for _key, value in records
        if value["job"] == spec.job.name
        and value["source_topic"] == settings.source_topic
        and value["metadata"]["event_time"].astimezone(dt.UTC).date() == day
    }


def _per_key(conn: Any, query: str, params: list[Any], width: int) -> dict[tuple[str, ...], tuple[Number, ...]]:
    return {
        tuple(str(v) for v in row[:width]): tuple(_zero(v) for v in row[width:])
        for row in conn.execute(query.encode(), params).fetchall()
    }


def reconcile(env: Mapping[str, str], day: dt.date) -> Reconciliation:
    """Compare ``day``'s daily tables with the sum of its windows, explaining differences by the late events."""
    import psycopg

    from services.common.settings import PostgresSettings

    dsn = env.get("POSTGRES_DSN") or PostgresSettings().dsn
    start = dt.datetime.combine(day, dt.time())  # windows' timestamps are UTC without a zone
    end = start + dt.timedelta(days=1)
    result = Reconciliation(day)
    with psycopg.connect(dsn) as conn:
        for measure in MEASURES:
            spec = flink_jobs.job(measure.job)
            table = flink_jobs.job_settings(spec, env).postgres_table
            keys = ", ".join(measure.key)
            width = len(measure.key)
            daily = _per_key(
                conn,
                f"SELECT {keys}, {', '.join(measure.daily)} FROM {measure.daily_table} "
                f"WHERE report_date = %s GROUP BY {keys}",
                [day],
                width,
            )
            windows = _per_key(
                conn,
                f"SELECT {keys}, {', '.join(measure.windows)} FROM {table} "
                f"WHERE window_start >= %s AND window_start < %s GROUP BY {keys}",
                [start, end],
                width,
            )
            late_ids = sorted(late_event_ids(env, measure.job, day))
            found = conn.execute(
                f"SELECT count(*) FROM {measure.raw_table} WHERE ds = %s AND event_id::text = ANY(%s)".encode(),
                [day, late_ids],
            ).fetchone()
            late = _per_key(
                conn,
                f"SELECT {keys}, {', '.join(measure.late)} FROM {measure.raw_table} "
                f"WHERE ds = %s AND event_id::text = ANY(%s) AND {measure.late_filter} GROUP BY {keys}",
                [day, late_ids],
                width,
            )
            result.late_events[measure.job] = len(late_ids)
            result.late_outside_lake[measure.job] = len(late_ids) - (found[0] if found else 0)
            every = sorted(daily.keys() | windows.keys() | late.keys())
            result.keys[measure.name] = len(every)
            zeros = (0,) * len(measure.figures)
            sums: list[list[Number]] = [[0, 0, 0] for _ in measure.figures]
            for key in every:
                values = zip(daily.get(key, zeros), windows.get(key, zeros), late.get(key, zeros), strict=True)
                for n, (figure, (batch, stream, share)) in enumerate(zip(measure.figures, values, strict=True)):
                    sums[n] = [sums[n][0] + batch, sums[n][1] + stream, sums[n][2] + share]
                    if batch != stream or share != 0:
                        result.differences.append(Difference(measure.name, figure, key, batch, stream, share))
            for figure, (batch, stream, share) in zip(measure.figures, sums, strict=True):
                result.totals.append(Total(measure.name, figure, batch, stream, share))
    return result


def reconcile_command(
    ds: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="The day (UTC event date).")],
    enforce: Annotated[
        Enforce,
        typer.Option(
            help="always: every unexplained difference fails; fresh-lake: only on a day whose lake holds no more "
            "than the stream counted (a day without events of earlier runs), the others are reported."
        ),
    ] = Enforce.ALWAYS,
) -> None:
    """Compare the day's daily tables with the sum of its streaming windows; every difference must be accounted
    for by the late events the stream reported (exit 1 otherwise, see ``--enforce``)."""
    import psycopg

    from deploy.spark import stack_environment

    _paths, env = stack_environment()
    try:
        result = reconcile(env, ds.date())
    except psycopg.errors.UndefinedTable as error:
        typer.echo(f"error: {str(error).splitlines()[0]} (run the daily batch and the window jobs first)", err=True)
        raise typer.Exit(code=1) from error
    for difference in result.differences:
        typer.echo(difference.describe())
    for total in result.lake_surplus:
        typer.echo(f"lake surplus: {total.describe()}")
    typer.echo(result.summary())
    if not result.ok and not result.enforced(enforce):
        typer.echo("not enforced: the day's lake holds events the stream did not count (earlier runs' events)")
    elif not result.ok:
        raise typer.Exit(code=1)
