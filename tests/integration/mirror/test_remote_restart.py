"""The mirror rides out a restart of the remote broker (a private SASL broker, not the shared one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local.components import KafkaBroker
from deploy.local.stack import Stack
from tests.integration.generator.support import wait_for
from tests.integration.mirror.conftest import MirrorProcess, compare, produce_sequence, remote_config
from tests.integration.processes import read_topic, topic_size
from tests.integration.stack.support import private_stack_context

pytestmark = pytest.mark.integration

BROKER = "remote_x"


@pytest.fixture
def private_remote(tmp_path: Path) -> Iterator[tuple[Stack, dict[str, str]]]:
    stack = Stack(private_stack_context(tmp_path), [KafkaBroker(BROKER, sasl=True)])
    env = stack.up()
    try:
        yield stack, env
    finally:
        stack.down()


def _metric(mirror: MirrorProcess, name: str) -> float:
    try:
        text = httpx.get(mirror.url("/metrics"), timeout=5).text
    except httpx.HTTPError:
        return -1
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_remote_broker_restart_mid_stream(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    private_remote: tuple[Stack, dict[str, str]],
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    stack, remote_env = private_remote
    source, destination, group = unique_name("src"), unique_name("dst"), unique_name("grp")
    remote = remote_config(remote_env)
    local = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    half = 20_000
    produce_sequence(remote, mirror_registry_url, source, partitions=3, count=half)

    env = {**stack_env, **remote_env, "SCHEMA_REGISTRY_URL": mirror_registry_url}
    mirror = mirror_process(
        env,
        MIRROR_TOPICS=source,
        MIRROR_RENAME=f'{{"{source}": "{destination}"}}',
        MIRROR_GROUP_ID=group,
        MIRROR_BATCH_SIZE="1000",
        MIRROR_STATS_INTERVAL_MS="500",
    ).start()
    wait_for(lambda: topic_size(local, destination) >= half // 4, 120, "mirroring under way")

    stack.supervisor.stop(BROKER)
    wait_for(lambda: _metric(mirror, "freightline_mirror_source_up") == 0, 60, "the mirror notices the outage")
    assert httpx.get(mirror.url("/readyz"), timeout=5).status_code == 503
    time.sleep(3)  # the mirror keeps retrying while the broker is away
    assert mirror.alive()

    stack.supervisor.start(BROKER)
    component = stack.component(BROKER)
    wait_for(lambda: component.ready(stack.ctx), 120, "the private broker is back")
    produce_sequence(remote, mirror_registry_url, source, partitions=3, count=half, start=half)
    wait_for(lambda: topic_size(local, destination) >= 2 * half, 180, "everything mirrored after the restart")
    wait_for(lambda: _metric(mirror, "freightline_mirror_source_up") == 1, 60, "the mirror reconnected")
    assert mirror.alive()
    assert mirror.stop() == 0

    report = compare(read_topic(remote, source), read_topic(local, destination))
    print(
        f"\nmirror remote-restart test: source={report.source} destination={report.destination} "
        f"lost={report.lost} duplicates={report.duplicates} in_order={report.in_order}"
    )
    assert report.lost == 0
    assert report.in_order
