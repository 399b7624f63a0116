from __future__ import annotations

import pytest


@pytest.fixture
def monitored_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The stack's env, which must carry the monitoring endpoints (a stack started before they existed does not:
    run `freightline up` again to add them)."""
    missing = [
        key for key in ("PROMETHEUS_URL", "ALERTMANAGER_WEBHOOK_URL", "METRICS_TARGETS_DIR") if key not in stack_env
    ]
    if missing:
        pytest.fail(f"the local stack exported no {', '.join(missing)}: run `freightline up` to start its monitoring")
    return stack_env
