"""Mirror settings (subscription, renames, registries) and the remote connection state."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import KafkaError

from services.common.metrics import ServiceMetrics
from services.common.settings import SchemaRegistrySettings
from services.mirror.mirror import MirrorMetrics, SourceHealth
from services.mirror.settings import MirrorSettings


def test_default_mirrors_product_views_into_the_catalogue_topic() -> None:
    settings = MirrorSettings()
    assert settings.source_topics() == ["product_views"]
    assert settings.destination("product_views") == "web.product_views.v1"


def test_regex_subscription_and_prefix() -> None:
    settings = MirrorSettings(topic_regex="orders\\..*", destination_prefix="remote.", rename={})
    assert settings.source_topics() == ["^orders\\..*"]
    assert settings.destination("orders.eu") == "remote.orders.eu"


def test_rename_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_TOPICS", "a, b")
    monkeypatch.setenv("MIRROR_RENAME", json.dumps({"a": "x.a.v1"}))
    settings = MirrorSettings()
    assert settings.source_topics() == ["a", "b"]
    assert [settings.destination(t) for t in ("a", "b")] == ["x.a.v1", "b"]


def test_empty_topic_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="no topic"):
        MirrorSettings(topics=" , ").source_topics()


def test_source_registry_only_when_it_differs() -> None:
    destination = SchemaRegistrySettings(url="http://127.0.0.1:18081")
    assert MirrorSettings().source_registry(destination) is None
    assert MirrorSettings(source_schema_registry_url="http://127.0.0.1:18081/").source_registry(destination) is None
    other = MirrorSettings(source_schema_registry_url="http://127.0.0.1:28081").source_registry(destination)
    assert other is not None and other.url == "http://127.0.0.1:28081"


def _health() -> tuple[SourceHealth, MirrorMetrics]:
    metrics = MirrorMetrics(ServiceMetrics("mirror"))
    return SourceHealth(metrics, "mirror"), metrics


def _stats(state: str) -> str:
    return json.dumps({"brokers": {"127.0.0.1:29092/1": {"nodeid": 1, "state": state}}})


def test_connection_state_follows_statistics_and_errors() -> None:
    health, metrics = _health()
    assert not health.ready
    health.on_stats(_stats("UP"))
    assert health.ready and metrics.source_up._value.get() == 1
    health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert not health.ready and metrics.source_up._value.get() == 0
    health.on_stats(_stats("UP"))
    assert health.ready


def test_authentication_failure_is_not_ready_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    health, metrics = _health()
    health.on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed"))
    assert not health.ready
    assert metrics.auth_failures._value.get() == 1
    assert "rejected the SASL credentials" in caplog.text
    health.on_stats(_stats("INIT"))
    assert not health.ready
