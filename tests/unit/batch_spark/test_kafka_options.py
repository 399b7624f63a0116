"""Spark's Kafka source options of the reference load: the login and, over TLS, the stack's CA as a PEM trust store
(the JVM's own trust store does not know a private CA: without it the TLS handshake fails)."""

from __future__ import annotations

from batch_spark.load_reference import kafka_options
from services.common.settings import KafkaSettings
from tests.unit.conftest import SecureKafka


def test_a_secure_cluster_gets_the_scram_login_and_the_ca_as_pem_trust_store(secure_kafka: SecureKafka) -> None:
    kafka = secure_kafka(username="admin")
    options = kafka_options(kafka, "reference.products.v1")
    assert options["kafka.bootstrap.servers"] == "k:1" and options["subscribe"] == "reference.products.v1"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    login = 'ScramLoginModule required username="admin" password="pw";'  # pragma: allowlist secret
    assert options["kafka.sasl.jaas.config"] == f"org.apache.kafka.common.security.scram.{login}"
    ca = kafka.ssl_ca_location
    assert (options["kafka.ssl.truststore.type"], options["kafka.ssl.truststore.location"]) == ("PEM", ca)


def test_a_plaintext_cluster_gets_neither() -> None:
    options = kafka_options(KafkaSettings(bootstrap_servers="k:1"), "t")
    assert options["kafka.security.protocol"] == "PLAINTEXT"
    assert not any("sasl" in key or "truststore" in key for key in options)
