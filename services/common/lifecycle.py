"""Graceful shutdown: SIGTERM/SIGINT set a stop flag that loops drain on."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class Shutdown:
    """A stop flag shared by a service's loops; ``install`` wires it to SIGTERM and SIGINT."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def install(self) -> Shutdown:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._event.is_set():
            log.warning("second %s: already draining", name)
            return
        log.info("received %s: draining, flushing and committing before exit", name)
        self.request(name)

    def request(self, reason: str = "requested") -> None:
        self.reason = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
