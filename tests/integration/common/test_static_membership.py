"""Static group membership (KIP-345): a consumer killed and restarted at once takes its partitions back without
waiting out its old session, and replays at most its uncommitted batch.

The relay runs with a session timeout of five minutes. A dynamic member restarted after a SIGKILL could not be
assigned anything until the dead member's session expired (the group would list both members and wait); a static
member with the same ``group.instance.id`` replaces the dead one at once. So the group is checked right after
the restarted relay committed: one member, the same instance id, a new member id; the dead member is gone
although its session cannot have expired.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Callable

import pytest

from deploy.processes import committed_offsets, group_members
from services.common.kafka import consumer_config, group_instance_id
from services.common.serde import AvroSerde
from services.common.settings import KafkaSettings
from tests.integration.common.test_kafka_pipeline import (  # the relay app and its fixtures
    _relay,
    _wait_for,
    kafka,
    produce,
    read_all,
    reaper,
    relay_env,
    serde,
)

pytestmark = pytest.mark.integration

__all__ = ["kafka", "reaper", "relay_env", "serde"]  # fixtures used by the test below

SESSION_TIMEOUT_MS = 300_000  # far longer than the test: an old session never expires while it runs
BATCH = 200  # the relay's batch size


def test_config_carries_the_instance_id() -> None:
    settings = KafkaSettings()
    assert consumer_config(settings, "g", "c", instance_id="mirror-a")["group.instance.id"] == "mirror-a"
    assert "group.instance.id" not in consumer_config(settings, "g", "c")
    assert group_instance_id("mirror", "") is None
    assert group_instance_id("mirror", "mirror-7") == "mirror-7"
    default = group_instance_id("mirror", None)
    assert default is not None and default.startswith("mirror-") and default == group_instance_id("mirror", None)


def test_sigkill_and_immediate_restart_rejoin_as_the_same_member_without_loss_or_replay_of_committed_records(
    kafka: KafkaSettings,
    serde: AvroSerde,
    relay_env: dict[str, str],
    reaper: list[subprocess.Popen[bytes]],
    unique_name: Callable[[str], str],
) -> None:
    total = 6000
    group, source = relay_env["RELAY_GROUP"], relay_env["RELAY_INPUT"]
    client = kafka.client_config()
    env = {
        **relay_env,
        "RELAY_INSTANCE_ID": unique_name("relay-instance"),
        "RELAY_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
    }
    produce(kafka, serde, source, range(total))
    inputs = {
        (m.partition() or 0, m.offset() or 0): serde.decode(m.value())["id"] for m in read_all(kafka, source, total)
    }

    def committed_total() -> int:
        return sum(max(offset, 0) for offset in committed_offsets(client, group, [source]).values())

    first = _relay(env, RELAY_BATCH_DELAY_S="0.5")
    reaper.append(first)
    _wait_for(lambda: committed_total() > 1000, 120, "the relay to commit a first thousand records")
    state, members = group_members(client, group)
    assert state == "STABLE" and len(members) == 1
    ((old_member, instance),) = members
    assert instance == env["RELAY_INSTANCE_ID"]

    first.send_signal(signal.SIGKILL)
    first.wait()
    at_crash = committed_offsets(client, group, [source])
    assert 0 < sum(max(o, 0) for o in at_crash.values()) < total, "the kill must leave records to process"

    second = _relay(env, RELAY_BATCH_DELAY_S="0.5")  # at once, the same instance id
    reaper.append(second)
    crash_total = committed_total()
    _wait_for(lambda: committed_total() > crash_total, 120, "the restarted relay to commit (rejoined at once)")
    state, members = group_members(client, group)
    assert len(members) == 1, f"the dead member is still in the group: {members}"
    ((new_member, instance),) = members
    assert instance == env["RELAY_INSTANCE_ID"] and new_member != old_member

    _wait_for(lambda: committed_total() == total, 180, "the restarted relay to commit everything")
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0, second.stderr.read().decode() if second.stderr else ""

    outputs = read_all(kafka, relay_env["RELAY_OUTPUT"], total)
    counts = Counter(serde.decode(m.value())["id"] for m in outputs)
    assert set(counts) == set(range(total)), f"{total - len(counts)} records lost"
    replayed = {i for i, count in counts.items() if count > 1}
    committed_before_crash = {i for (p, o), i in inputs.items() if o < at_crash[(source, p)]}
    assert not replayed & committed_before_crash, "records committed before the crash were processed again"
    assert len(replayed) <= 3 * BATCH  # at most the uncommitted batch of each partition
