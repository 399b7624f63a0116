"""Topic creation takes replication from the cluster's settings, not a constant."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings

pytestmark = pytest.mark.integration


def _config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def test_replication_factor_and_min_insync_come_from_settings(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = unique_name("replicated")
    ensure_topics(settings, [(topic, 2, {"retention.ms": "3600000"})])
    config = _config(kafka_bootstrap, topic)
    assert config["min.insync.replicas"] == str(settings.topic_min_insync_replicas)
    assert config["retention.ms"] == "3600000"

    # A catalogue topic's own min.insync.replicas wins over the cluster's setting.
    own = unique_name("own-isr")
    ensure_topics(settings, [(own, 1, {"min.insync.replicas": "1"})])
    assert _config(kafka_bootstrap, own)["min.insync.replicas"] == "1"

    # The single-node stack has one broker: asking the settings for two replicas must reach the broker and fail.
    production_like = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_replication_factor=2, topic_min_insync_replicas=2
    )
    with pytest.raises(KafkaException, match=r"(?i)replication"):
        ensure_topics(production_like, [(unique_name("two-replicas"), 1, {})])
