from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def sink_env(stack_env: dict[str, str], unique_name: Callable[[str], str]) -> dict[str, str]:
    """The stack's env plus what every sink test wants: any metrics port, quick retries."""
    return {**stack_env, "METRICS_PORT": "0", "LOG_LEVEL": "INFO"}
