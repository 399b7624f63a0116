"""The envelope of every record: its event id, its produce time (jitter and lateness) and its metadata.

Event ids are version 4 UUIDs (RFC 4122 variant) made of a random prefix drawn once per run from the seed and
the start time, and a 40-bit counter: runs with another seed or start time never reuse an id. The produce time
of an event is its event time plus a delay: a jitter of up to ``jitter_ms`` for most events, or, for the
``late_fraction`` share of them, between ``jitter_ms`` and ``max_lateness_ms``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from services.generator.config import GeneratorConfig

_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def id_prefix(seed: int, start_time_ms: int) -> str:
    """The first 22 hex digits (with hyphens) of a run's event ids: version 4 and variant bits set."""
    bits = random.Random(f"{seed}/{start_time_ms}").getrandbits(128)
    prefix = f"{(bits & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-{prefix[20:22]}"


class Envelopes:
    """Event ids, delays and metadata of one run; ``random`` is the run's seeded draw (one per delay)."""

    def __init__(self, config: GeneratorConfig, random_: Callable[[], float]) -> None:
        self._random = random_
        self._prefix = id_prefix(config.seed, config.start_time_ms)
        # hex(n)[-10:] of a counter from 2**40 + 1: the last ten hex digits, zero-padded, at a fraction of the
        # cost of format(); 2**40 ids per run.
        self._counter = itertools.count((1 << 40) + 1)
        self._producer = config.producer
        self._jitter_ms = config.jitter_ms
        self._late_fraction = config.late_fraction
        self._on_time_share = 1.0 - config.late_fraction
        self._late_span = config.max_lateness_ms - config.jitter_ms + 1
        self._jitter_span = config.jitter_ms + 1

    def uuid(self) -> str:
        """The next id of the run (events, labels and sessions share the counter)."""
        return self._prefix + hex(next(self._counter))[-10:]

    def delay(self) -> int:
        """Produce time minus event time: a jitter, or for the late share up to the maximum lateness."""
        roll = self._random()
        late = self._late_fraction
        if roll < late:
            return self._jitter_ms + int(roll / late * self._late_span)
        return int((roll - late) / self._on_time_share * self._jitter_span)

    def metadata(self, event_time_ms: int, produce_time_ms: int) -> dict[str, Any]:
        """A new event id and the event's clocks (``ingest_time`` is restamped at send time)."""
        return metadata(self._prefix + hex(next(self._counter))[-10:], event_time_ms, produce_time_ms, self._producer)


def metadata(event_id: str, event_time_ms: int, produce_time_ms: int, producer: str) -> dict[str, Any]:
    """An event's metadata record."""
    return {
        "event_id": event_id,
        "event_time": event_time_ms,
        "ingest_time": produce_time_ms,
        "producer": producer,
        "trace_context": None,
    }
