"""The reconciliation's verdicts and the batch stage's days (pure parts; the comparison itself runs against real
Flink windows and Spark tables in ``tests/integration/batch_spark``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from deploy.batch_stage import BatchFigures, run_days
from deploy.reconcile import Difference, Enforce, Reconciliation, Total

DAY = dt.date(2026, 11, 2)


def test_a_difference_is_explained_only_by_exactly_the_late_events_share() -> None:
    explained = Difference(
        "order revenue", "revenue", ("DE", "EUR"), Decimal("120.50"), Decimal("100.00"), Decimal("20.50")
    )
    short = Difference("product views", "views", ("P-1",), 10, 8, 1)
    assert explained.unexplained == 0 and "[explained]" in explained.describe()
    assert short.unexplained == 1 and "UNEXPLAINED 1" in short.describe()
    result = Reconciliation(DAY, differences=[explained])
    assert result.ok and result.unexplained == []
    result.differences.append(short)
    assert not result.ok and result.unexplained == [short]
    assert "1 unexplained" in result.summary()


def test_the_run_covers_every_utc_day_from_its_start_to_now() -> None:
    now = dt.datetime(2026, 11, 3, 0, 5, tzinfo=dt.UTC)
    assert run_days("2026-11-02T23:40:00+00:00", now) == [DAY, DAY + dt.timedelta(days=1)]
    # a start given with an offset is a UTC instant of the day before
    assert run_days("2026-11-03T00:30:00+01:00", now) == [DAY, DAY + dt.timedelta(days=1)]
    assert run_days("2026-11-03T00:01:00+00:00", now) == [DAY + dt.timedelta(days=1)]


def test_every_raw_row_read_must_be_accounted_for() -> None:
    figures = BatchFigures(read={"orders": 10}, loaded={"orders": 7}, rejected={"orders": 2}, duplicates={"orders": 1})
    assert figures.accounted
    figures.loaded["orders"] = 6
    assert not figures.accounted


def test_unexplained_differences_are_enforced_on_a_day_whose_lake_holds_no_more_than_the_stream_counted() -> None:
    short = Difference("product views", "views", ("P-1",), 8, 9, 0)  # a window counts one view the lake lacks
    result = Reconciliation(DAY, differences=[short], totals=[Total("product views", "views", 100, 101, 0)])
    assert result.lake_surplus == []
    assert result.enforced(Enforce.FRESH_LAKE) and result.enforced(Enforce.ALWAYS)
    # the lake holds 5 events beyond the windows and the 2 late ones: events of an earlier run
    surplus = Total("order revenue", "orders", 17, 10, 2)
    result.totals.append(surplus)
    assert result.lake_surplus == [surplus] and surplus.lake_surplus == 5
    assert "lake surplus 5" in surplus.describe()
    assert not result.enforced(Enforce.FRESH_LAKE) and result.enforced(Enforce.ALWAYS)
