"""The agents' offset guard: contiguous offsets pass, a hole is reported before anything past it is handled."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.enricher.agents import check_offsets


def _events(topic: str, partition: int, offsets: list[int]) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=o)) for o in offsets]


def test_contiguous_and_replayed_offsets_pass() -> None:
    expected = {("t", 0): 5}
    assert check_offsets(expected, _events("t", 0, [5, 6, 7])) is None
    assert check_offsets(expected, _events("t", 0, [6, 7, 8])) is None  # a replay overlaps: fine
    assert expected[("t", 0)] == 9


def test_a_hole_is_reported() -> None:
    expected = {("t", 0): 0}
    problem = check_offsets(expected, _events("t", 0, [643, 644]))
    assert problem is not None and "643" in problem and "expected 0" in problem


def test_unknown_partitions_start_where_they_are() -> None:
    expected: dict[tuple[str, int], int] = {}
    assert check_offsets(expected, _events("t", 2, [10, 11])) is None and expected[("t", 2)] == 12
