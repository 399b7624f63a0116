"""The chaos harness's count of one stage: lost, unexpected and the duplicates the stage itself added."""

from __future__ import annotations

from deploy.chaos import count_ids


def test_a_stage_is_charged_only_with_the_duplicates_it_added() -> None:
    source = ["a", "b", "b", "c", "d"]  # "b" came twice from an earlier stage
    landed = ["a", "a", "b", "b", "c", "x"]  # "a" repeated here, "d" lost, "x" from nowhere
    count = count_ids("sink", "somewhere", source, landed)
    assert (count.expected, count.delivered, count.lost, count.duplicated, count.unexpected) == (4, 3, 1, 1, 1)


def test_nothing_lost_nothing_repeated() -> None:
    count = count_ids("mirror", "topic", ["a", "b"], ["b", "a"])
    assert (count.lost, count.duplicated, count.unexpected) == (0, 0, 0)
