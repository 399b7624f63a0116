"""The pure parts of dead-letter replay: selection, times, replay markers, topic names."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.common import dlq

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def letter(offset: int, *, reason: str = "unknown_schema", minutes: int = 0, partition: int = 0, **extra: Any) -> Any:
    envelope = {
        "error_type": reason,
        "failed_at": T0 + dt.timedelta(minutes=minutes),
        "source_topic": "web.product_views.v1",
        "source_partition": partition,
        "source_offset": offset,
        "original_headers": extra.get("headers", []),
    }
    return dlq.DeadLetter("web.product_views.v1.dlq", 2, 100 + offset, envelope)


LETTERS = [
    letter(1),
    letter(2, reason="undecodable", minutes=5),
    letter(3, minutes=10, partition=1),
    letter(4, reason="invalid_record", minutes=15),
]


@pytest.mark.parametrize(
    ("selection", "offsets"),
    [
        (dlq.Selection(), [1, 2, 3, 4]),
        (dlq.Selection(reasons=frozenset({"unknown_schema"})), [1, 3]),
        (dlq.Selection(reasons=frozenset({"undecodable", "invalid_record"})), [2, 4]),
        (dlq.Selection(since=T0 + dt.timedelta(minutes=5)), [2, 3, 4]),
        (dlq.Selection(until=T0 + dt.timedelta(minutes=10)), [1, 2, 3]),
        (dlq.Selection(source_partition=1), [3]),
        (dlq.Selection(from_offset=2, to_offset=3), [2, 3]),
        (dlq.Selection(reasons=frozenset({"unknown_schema"}), from_offset=2), [3]),
    ],
)
def test_selection(selection: dlq.Selection, offsets: list[int]) -> None:
    assert [x.source_offset for x in dlq.select(LETTERS, selection)] == offsets


def test_times_are_iso_or_epoch_millis_in_utc() -> None:
    assert dlq.parse_time("2026-12-01T12:00:00Z") == T0
    assert dlq.parse_time("2026-12-01T12:00:00") == T0
    assert dlq.parse_time("2026-12-01T13:00:00+01:00") == T0
    assert dlq.parse_time(str(int(T0.timestamp() * 1000))) == T0
    with pytest.raises(ValueError):
        dlq.parse_time("yesterday")


def test_a_letter_knows_its_place_and_its_failure_time() -> None:
    one = LETTERS[0]
    assert one.key == "2:101"
    assert one.failed_at == T0
    epoch = dlq.DeadLetter("t.dlq", 0, 0, {**one.envelope, "failed_at": int(T0.timestamp() * 1000)})
    assert epoch.failed_at == T0


def test_replay_headers_keep_the_original_ones_and_mark_this_replay_only() -> None:
    original = [("traceparent", b"00-abc"), (dlq.REPLAY_OF_HEADER, b"old/0/1"), (dlq.REPLAY_AT_HEADER, b"1")]
    headers = dlq.replay_headers(letter(7, headers=[{"key": k, "value": v} for k, v in original]), 42)
    assert headers == [
        ("traceparent", b"00-abc"),
        (dlq.REPLAY_OF_HEADER, b"web.product_views.v1.dlq/2/107"),
        (dlq.REPLAY_AT_HEADER, b"42"),
    ]


def test_topic_names() -> None:
    assert dlq.dlq_topic_of("web.product_views.v1") == "web.product_views.v1.dlq"
    assert dlq.dlq_topic_of("web.product_views.v1.dlq") == "web.product_views.v1.dlq"
    assert dlq.replay_ledger_topic("web.product_views.v1.dlq") == "web.product_views.v1.dlq.replays"


def test_letters_of_several_topics_are_refused() -> None:
    from services.common.settings import KafkaSettings

    other = dlq.DeadLetter("other.dlq", 0, 0, LETTERS[0].envelope)
    with pytest.raises(ValueError, match="several topics"):
        dlq.replay(KafkaSettings(), [LETTERS[0], other], dry_run=True)
