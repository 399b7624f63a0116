"""The mirror against real brokers: fidelity, schema id translation, bad credentials (crash recovery, exactly once:
``test_exactly_once.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from services.common.entrypoint import UNREACHABLE_ENDPOINT
from services.common.serde import AvroSerde, schema_id_of, subject_for
from tests.integration.generator.support import wait_for
from tests.integration.mirror.conftest import (
    MirrorProcess,
    compare,
    mirror_settings,
    produce_sequence,
    remote_config,
)
from tests.integration.processes import read_topic, topic_size
from tests.integration.registry import private_registry

pytestmark = pytest.mark.integration


def _local(stack_env: dict[str, str]) -> dict[str, Any]:
    return {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}


def _metric(mirror: MirrorProcess, name: str) -> float:
    """Sum of a metric's samples; -1 while the metrics endpoint does not answer yet."""
    try:
        text = httpx.get(mirror.url("/metrics"), timeout=5).text
    except httpx.HTTPError:
        return -1
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def test_copies_key_headers_timestamp_partition_and_topic_configs(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    source, destination, group = unique_name("src"), unique_name("dst"), unique_name("grp")
    remote = remote_config(stack_env)
    produce_sequence(
        remote,
        mirror_registry_url,
        source,
        partitions=4,
        count=2_000,
        topic_configs={"cleanup.policy": "delete", "retention.ms": "86400000"},
    )
    env = {**stack_env, "SCHEMA_REGISTRY_URL": mirror_registry_url}
    mirror = mirror_process(env, **mirror_settings(source, destination, group)).start()
    wait_for(lambda: topic_size(_local(stack_env), destination) >= 2_000, 120, "all records mirrored")
    wait_for(lambda: _metric(mirror, "freightline_mirror_source_up") == 1, 60, "source reported up")
    assert httpx.get(mirror.url("/readyz"), timeout=5).status_code == 200
    assert _metric(mirror, "freightline_mirror_last_poll_timestamp_seconds") > 0
    assert mirror.stop() == 0

    report = compare(read_topic(remote, source), read_topic(_local(stack_env), destination))
    assert (report.lost, report.duplicates, report.in_order) == (0, 0, True), report

    admin = AdminClient(_local(stack_env))
    assert len(admin.list_topics(destination, timeout=30).topics[destination].partitions) == 4
    resource = ConfigResource(ConfigResource.Type.TOPIC, destination)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "86400000"
    assert configs["cleanup.policy"].value == "delete"
    # One registry: ids pass through, and the writer schema is registered under the destination subject too.
    registry = SchemaRegistryClient({"url": mirror_registry_url})
    latest = registry.get_latest_version(subject_for(destination))
    assert latest.schema_id == registry.get_latest_version(subject_for(source)).schema_id


def test_two_registries_translate_schema_ids(
    stack_env: dict[str, str],
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
    tmp_path: Path,
) -> None:
    source, destination, group = unique_name("src"), unique_name("dst"), unique_name("grp")
    remote = remote_config(stack_env)
    with (
        private_registry(stack_env["POSTGRES_DSN"], str(tmp_path / "source-registry.log")) as source_url,
        private_registry(stack_env["POSTGRES_DSN"], str(tmp_path / "destination-registry.log")) as destination_url,
    ):
        # Dummy schemas on the destination registry so that the same schema gets another id there.
        destination_registry = SchemaRegistryClient({"url": destination_url})
        for index in range(5):
            dummy = f'{{"type":"record","name":"Dummy{index}","fields":[{{"name":"f","type":"int"}}]}}'
            destination_registry.register_schema(f"dummy-{index}-value", Schema(dummy, "AVRO"))
        produce_sequence(remote, source_url, source, partitions=2, count=500)
        source_id = SchemaRegistryClient({"url": source_url}).get_latest_version(subject_for(source)).schema_id

        env = {**stack_env, "SCHEMA_REGISTRY_URL": destination_url}
        settings = mirror_settings(source, destination, group, MIRROR_SOURCE_SCHEMA_REGISTRY_URL=source_url)
        mirror = mirror_process(env, **settings).start()
        wait_for(lambda: topic_size(_local(stack_env), destination) >= 500, 120, "records mirrored")
        assert mirror.stop() == 0

        destination_id = destination_registry.get_latest_version(subject_for(destination)).schema_id
        assert destination_id != source_id
        copied = read_topic(_local(stack_env), destination)
        assert {schema_id_of(m.value() or b"") for m in copied} == {destination_id}
        report = compare(read_topic(remote, source), copied, body_only=True)
        assert (report.lost, report.duplicates, report.in_order) == (0, 0, True), report
        serde = AvroSerde(destination_registry)
        decoded = sorted(serde.decode(m.value())["n"] for m in copied)
        assert decoded == list(range(500))


def test_wrong_credentials_end_the_mirror_at_start_up_naming_the_remote_cluster(
    stack_env: dict[str, str],
    mirror_registry_url: str,
    unique_name: Callable[[str], str],
    mirror_process: Callable[..., MirrorProcess],
) -> None:
    """Credentials the remote cluster rejects are a deployment error: the mirror exits at once with one line saying
    which cluster refused it and why, instead of running without a source (an orchestrator then shows it failing)."""
    env = {**stack_env, "SCHEMA_REGISTRY_URL": mirror_registry_url, "REMOTE_KAFKA_SASL_PASSWORD": "wrong"}
    mirror = mirror_process(env, **mirror_settings(unique_name("src"), unique_name("dst"), unique_name("grp"))).start()
    assert mirror.process is not None
    assert mirror.process.wait(60) == UNREACHABLE_ENDPOINT  # a hang guard, not a timed assertion
    lines = [line for line in mirror.log.read_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "REMOTE_KAFKA_BOOTSTRAP_SERVERS" in lines[0] and "SASL authentication" in lines[0], lines[0]
    assert "wrong" not in lines[0]
