from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import KafkaSettings, RemoteKafkaSettings, SchemaRegistrySettings, ServiceSettings
from tests.unit.conftest import SecureKafka


def test_local_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert KafkaSettings().client_config() == {
        "bootstrap.servers": "127.0.0.1:19092",
        "security.protocol": "PLAINTEXT",
    }


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    assert KafkaSettings().bootstrap_servers == "broker-1:9092,broker-2:9092"


def test_remote_credentials_are_required_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REMOTE_KAFKA_SASL_USERNAME", "REMOTE_KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"needs REMOTE_KAFKA_SASL_USERNAME, REMOTE_KAFKA_SASL_PASSWORD$"):
        RemoteKafkaSettings().client_config()
    monkeypatch.setenv("REMOTE_KAFKA_SASL_USERNAME", "mirror")
    monkeypatch.setenv("REMOTE_KAFKA_SASL_PASSWORD", "s3cret")
    settings = RemoteKafkaSettings()
    assert settings.client_config()["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.masked()["sasl.password"] == "***"


def test_bad_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="unknown log level"):
        ServiceSettings()
    monkeypatch.setenv("METRICS_PORT", "70000")
    monkeypatch.setenv("LOG_LEVEL", "info")
    with pytest.raises(ValidationError, match="metrics_port"):
        ServiceSettings()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "  ")
    with pytest.raises(ValidationError, match="must not be empty"):
        KafkaSettings()


def test_registry_basic_auth_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "u:p")
    settings = SchemaRegistrySettings()
    assert settings.client_config()["basic.auth.user.info"] == "u:p"
    assert "u:p" not in repr(settings)


def test_min_insync_above_replication_factor_names_the_variable() -> None:
    settings = KafkaSettings(topic_replication_factor=1, topic_min_insync_replicas=2)
    with pytest.raises(ValueError, match="KAFKA_TOPIC_MIN_INSYNC_REPLICAS"):
        settings.replication()
    assert KafkaSettings(topic_replication_factor=3, topic_min_insync_replicas=2).replication() == (3, 2)


def test_the_java_clients_properties_carry_the_login_and_the_ca(secure_kafka: SecureKafka) -> None:
    secure = secure_kafka(mechanism="PLAIN", password='p"w')
    ca = secure.ssl_ca_location
    assert secure.java_client_properties() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="stream" '
        'password="p\\"w";',  # pragma: allowlist secret
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": ca,
    }
    # the CA only over TLS, the login only with credentials
    plain = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", ssl_ca_location=ca)
    assert plain.java_client_properties() == {"security.protocol": "SASL_PLAINTEXT"}
