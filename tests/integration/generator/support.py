"""Test support for the generator and mirror integration tests: waiting for a condition."""

from __future__ import annotations

import time
from typing import Any


def wait_for(condition: Any, timeout: float, message: str, interval: float = 0.5) -> None:
    """Poll ``condition`` until it is true; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)
