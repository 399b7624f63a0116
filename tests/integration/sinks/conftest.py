from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.sinks.targets import SinkUnderTest, sink_under_test


@pytest.fixture
def sink_env(stack_env: dict[str, str], unique_name: Callable[[str], str]) -> dict[str, str]:
    """The stack's env plus what every sink test wants: any metrics port, quick retries."""
    return {**stack_env, "METRICS_PORT": "0", "LOG_LEVEL": "INFO"}


@pytest.fixture
def make_sink(
    sink_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> Iterator[Callable[[str, str, int], SinkUnderTest]]:
    """``make(module, prefix, partitions)``: a sink on a new topic and a target of its own (see
    ``tests.integration.sinks.targets``); the targets' data is removed afterwards."""
    made: list[SinkUnderTest] = []

    def make(module: str, prefix: str, partitions: int) -> SinkUnderTest:
        sink = sink_under_test(module, sink_env, new_topic(prefix, partitions), unique_name(prefix))
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.cleanup()
