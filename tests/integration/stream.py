"""A stream of records produced at a steady pace from a thread, so that something can happen to its consumers
while records keep arriving (an instance joining a group, a target going down)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import Producer

# what ``make(n)`` gives for the n-th record: its key, value and headers, and the id it is known by downstream
Record = tuple[str, bytes, list[tuple[str, str | bytes | None]] | None, str]


class PacedStream:
    """``per_tick`` records every ``tick_s`` seconds to ``topic`` until ``stop()``; use as a context manager."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        topic: str,
        make: Callable[[int], Record],
        *,
        per_tick: int = 30,
        tick_s: float = 0.1,
    ) -> None:
        self.producer = Producer({**client_config, "enable.idempotence": True, "linger.ms": 5})
        self.topic = topic
        self.make = make
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-stream", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.tick_s):
                for _ in range(self.per_tick):
                    key, value, headers, record_id = self.make(len(self.ids))
                    self.producer.produce(self.topic, value, key, headers=headers)
                    self.ids.append(record_id)
                self.producer.poll(0)
        except BaseException as error:  # reported by ``stop``
            self._error = error

    def __enter__(self) -> PacedStream:
        self._thread.start()
        return self

    def stop(self) -> list[str]:
        """Stop producing, wait until every record is acknowledged and return their ids in production order."""
        self._stop.set()
        self._thread.join(60)
        if self._error is not None:
            raise AssertionError(f"the stream failed: {self._error!r}")
        assert self.producer.flush(60) == 0, "records not acknowledged"
        return list(self.ids)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(60)
