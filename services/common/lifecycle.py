"""Graceful shutdown: SIGTERM/SIGINT set a stop flag that loops drain on, within a deadline.

Once a stop is requested, a service has ``SHUTDOWN_TIMEOUT_S`` to drain, flush and commit. A service still
running when the deadline passes logs one line naming the setting and exits with ``SHUTDOWN_OVERRUN`` (3):
what it had not committed is read again on restart, so nothing is lost, and an orchestrator's own kill
(Kubernetes' ``terminationGracePeriodSeconds``, compose's ``stop_grace_period``) is never what ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

SHUTDOWN_OVERRUN = 3


def _exit_now(code: int) -> None:
    logging.shutdown()
    os._exit(code)


class Shutdown:
    """A stop flag shared by a service's loops; ``install`` wires it to SIGTERM and SIGINT.

    With a deadline (``enforce``), the first stop request arms a watchdog that ends the process with
    ``SHUTDOWN_OVERRUN`` when the drain takes longer than the deadline.
    """

    def __init__(self, exit: Callable[[int], None] = _exit_now) -> None:
        self._event = threading.Event()
        self._exit = exit
        self.deadline_s: float | None = None
        self.reason: str | None = None

    def install(self) -> Shutdown:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def enforce(self, deadline_s: float) -> Shutdown:
        """Give the drain ``deadline_s`` seconds from the first stop request (``SHUTDOWN_TIMEOUT_S``)."""
        self.deadline_s = deadline_s
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._event.is_set():
            log.warning("second %s: already draining", name)
            return
        log.info("received %s: draining, flushing and committing before exit", name)
        self.request(name)

    def request(self, reason: str = "requested") -> None:
        if self._event.is_set():
            return
        self.reason = reason
        self._event.set()
        if self.deadline_s is not None:
            threading.Thread(target=self._watch, name="shutdown-deadline", daemon=True).start()

    def _watch(self) -> None:
        assert self.deadline_s is not None
        time.sleep(self.deadline_s)  # a daemon thread: a process that finished in time never wakes it
        message = (
            f"shutdown did not finish within SHUTDOWN_TIMEOUT_S={self.deadline_s:g}s: exiting with status "
            f"{SHUTDOWN_OVERRUN} (work not committed is read again on restart)"
        )
        log.error(message)
        self._exit(SHUTDOWN_OVERRUN)

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
