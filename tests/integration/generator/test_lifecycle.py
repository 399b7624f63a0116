"""The generator through a stop: SIGTERM during a bounded full-speed run delivers every record it handed to the
producer (the counts it reports are what the topics hold, every record whole), and exits 0.

The generator has no input, so it has no dead letters to keep through a crash (the consumers' tests do that). Its
"restart" is a run with the seed and ``--start`` that the stopped run printed: the same records come again, ids
included (a bounded run of as many events reproduces the stopped run exactly), so a restarted generator re-sends
what was delivered, consumers drop the repeats by ``metadata.event_id``, and nothing is lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from deploy.local.context import REPO_ROOT
from deploy.processes import last_json_line, local_client_config, remote_client_config
from schemas.catalogue import load_catalogue
from services.common.serde import AvroSerde, registry_client
from services.common.settings import SchemaRegistrySettings
from services.generator.records import ALL_TOPICS, CLICKSTREAM
from services.generator.settings import GeneratorSettings
from tests.integration.lifecycle import HANG_GUARD_S, SHUTDOWN_TIMEOUT_S
from tests.integration.processes import read_topic, topic_size, wait_for

pytestmark = pytest.mark.integration

BOUND = 5_000_000  # far more than the run gets to make before the signal


def _generator(stack_env: dict[str, str], registry_url: str, prefix: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **stack_env,
        "SCHEMA_REGISTRY_URL": registry_url,
        "GENERATOR_TOPIC_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
    }
    command = [sys.executable, "-m", "services.generator", "--no-pace", *args]
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    try:
        stdout, stderr = process.communicate(timeout=HANG_GUARD_S * 3)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    return process.returncode, (last_json_line(stdout) if process.returncode == 0 else {}), stderr[-3000:]


def _records(stack_env: dict[str, str], serde: AvroSerde, prefix: str) -> dict[str, Counter[str]]:
    """Per catalogue topic, every record of the run decoded (a record that does not decode fails the test), as a
    multiset of its values without ``ingest_time`` (the one field stamped at send time)."""
    found: dict[str, Counter[str]] = {}
    for name in ALL_TOPICS:
        spec = load_catalogue().topic(name)
        config = remote_client_config(stack_env) if spec.cluster == "remote" else local_client_config(stack_env)
        values = []
        for message in read_topic(config, prefix + name):
            record = serde.decode(message.value())
            record["metadata"].pop("ingest_time")
            values.append(repr(sorted(record.items())))
        found[name] = Counter(values)
    return found


def _sizes(stack_env: dict[str, str], prefix: str) -> dict[str, int]:
    sizes = {}
    for name in ALL_TOPICS:
        remote = load_catalogue().topic(name).cluster == "remote"
        config = remote_client_config(stack_env) if remote else local_client_config(stack_env)
        sizes[prefix + name] = topic_size(config, prefix + name)
    return sizes


def test_sigterm_mid_run_delivers_what_it_reports_and_the_same_seed_reproduces_the_run(
    stack_env: dict[str, str], generator_registry_url: str, unique_name: Callable[[str], str]
) -> None:
    stopped_prefix, again_prefix = unique_name("gen-term") + ".", unique_name("gen-again") + "."
    start = GeneratorSettings().backlog_start(BOUND, int(time.time() * 1000)).isoformat()
    seed = ["--seed", "41", "--start", start]
    process = _generator(stack_env, generator_registry_url, stopped_prefix, "--events", str(BOUND), *seed)
    try:
        local = local_client_config(stack_env)
        wait_for(lambda: topic_size(local, stopped_prefix + CLICKSTREAM) > 2_000, 120, what="records on the topics")
        at_signal = _sizes(stack_env, stopped_prefix)
        process.send_signal(signal.SIGTERM)
    finally:
        code, summary, stderr = _finish(process)
    assert code == 0, stderr
    assert summary["stopped_by"] == "SIGTERM" and 0 < summary["events"] < BOUND
    reported = {topic: summary["topics"].get(topic, 0) for topic in at_signal}
    # what it reports as delivered is on the topics; what was queued at the signal went out before the exit
    assert _sizes(stack_env, stopped_prefix) == reported
    assert sum(at_signal.values()) < sum(reported.values())
    print(f"\ngenerator SIGTERM: {sum(at_signal.values())} records at the signal, {sum(reported.values())} at exit")

    process = _generator(stack_env, generator_registry_url, again_prefix, "--events", str(summary["events"]), *seed)
    code, again, stderr = _finish(process)
    assert code == 0, stderr
    assert again["events"] == summary["events"]
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=generator_registry_url)))
    stopped, reproduced = _records(stack_env, serde, stopped_prefix), _records(stack_env, serde, again_prefix)
    assert sum(values.total() for values in stopped.values()) == sum(reported.values())  # every record decoded
    for name in ALL_TOPICS:
        assert reproduced[name] == stopped[name], name
