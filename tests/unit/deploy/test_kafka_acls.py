"""The ACL table of the secure stack (``deploy.local.kafka_acls``) and the secure broker's configuration, as pure
derivations: one principal per service, least privilege, the README's table, nothing changed when the switch is off."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.local import kafka_acls
from deploy.local.components import KafkaBroker, service_kafka_env
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.kafka_acls import Access, access_table, bindings, grants
from deploy.local.settings import StackSettings
from deploy.processes import local_client_config, remote_client_config
from schemas import topics
from services.common.deadletter import dead_letter_topic
from services.common.dlq import replay_ledger_topic
from services.common.settings import KafkaSettings, RemoteKafkaSettings
from services.mirror.settings import MirrorSettings
from services.sink_gcs.settings import GcsSinkSettings

FINANCE = (topics.SUPPLIER_INVOICES, topics.SUPPLIER_PAYMENTS)


def row(principal: str, cluster: str = kafka_acls.LOCAL) -> Access:
    return next(r for r in access_table() if r.principal == principal and r.cluster == cluster)


def test_one_principal_per_service_that_uses_kafka() -> None:
    """Every runnable service but the registry (which uses no Kafka) has a principal, plus the Flink jobs, the
    dead-letter tool's two (reading, replaying) and the batch's tasks; a new service without a row fails here."""
    services = {p.parent.name for p in (REPO_ROOT / "services").glob("*/__main__.py")} - {"schema_registry"}
    principals = {r.principal for r in access_table()}
    assert principals == services | {kafka_acls.STREAM, kafka_acls.DLQ_READER, kafka_acls.DLQ_REPLAY, kafka_acls.BATCH}
    assert kafka_acls.ADMIN not in principals and kafka_acls.BROKER not in principals
    keys = [(r.principal, r.cluster) for r in access_table()]
    assert len(keys) == len(set(keys))
    assert set(kafka_acls.principals(kafka_acls.REMOTE)) == {kafka_acls.GENERATOR, kafka_acls.MIRROR}


def test_least_privilege_operations() -> None:
    for r in access_table():
        for resource, name, pattern, operation in grants(r):
            assert name and name != "*", (r.principal, resource)
            assert operation != "ALL"
            if resource == "topic" and pattern == "literal":
                allowed = {"READ", "DESCRIBE"} | ({"DESCRIBE_CONFIGS"} if r.read_configs else set())
                if name in r.writes:
                    allowed |= {"WRITE", "CREATE"}
                assert operation in allowed, (r.principal, name, operation)
                if operation == "READ":
                    assert name in r.reads
            if resource == "broker":
                assert operation == "IDEMPOTENT_WRITE" and r.writes


def test_the_table_follows_the_services_settings() -> None:
    mirror = MirrorSettings.model_construct()
    assert row(kafka_acls.MIRROR, kafka_acls.REMOTE).groups == (mirror.group_id,)
    assert row(kafka_acls.MIRROR, kafka_acls.REMOTE).reads == (topics.UPSTREAM_PRODUCT_VIEWS,)
    assert topics.PRODUCT_VIEWS in row(kafka_acls.MIRROR).writes
    gcs = row("sink_gcs")
    assert gcs.groups == (GcsSinkSettings.model_construct().group_id,)
    assert set(gcs.reads) == set(FINANCE)
    assert row(kafka_acls.GENERATOR, kafka_acls.REMOTE).writes == (topics.UPSTREAM_PRODUCT_VIEWS,)


def test_named_boundaries() -> None:
    sinks = [r for r in access_table() if r.principal.startswith("sink_")]
    sink_inputs = {t for s in sinks for t in s.reads}
    enricher = row(kafka_acls.ENRICHER)
    assert not set(enricher.writes) & (sink_inputs - set(enricher.writes))
    assert not set(enricher.writes) & set(FINANCE)
    for r in access_table():
        if r.principal == kafka_acls.MIRROR:
            assert not [t for t in (*r.reads, *r.writes) if t.startswith("finance.")]
    for sink in sinks:
        assert set(sink.writes) == {dead_letter_topic(t) for t in sink.reads}  # its own DLQs, nothing else
    assert dead_letter_topic(topics.SUPPLIER_INVOICES) not in row("sink_mongodb").writes
    assert not row(kafka_acls.GENERATOR).reads


def test_the_dead_letter_tool_reads_every_dead_letter_topic_and_replays_only_to_their_sources() -> None:
    dead_letters = {t for r in access_table() for t in r.writes if t.endswith(".dlq")}
    ledgers = {replay_ledger_topic(t) for t in dead_letters}
    reader, replay = row(kafka_acls.DLQ_READER), row(kafka_acls.DLQ_REPLAY)
    assert set(reader.reads) == set(replay.reads) == dead_letters | ledgers
    assert not reader.writes and not reader.transactional_ids and not reader.groups
    local = [r for r in access_table() if r.cluster == kafka_acls.LOCAL]
    sources = {t for r in local for t in r.reads if dead_letter_topic(t) in dead_letters}
    assert set(replay.writes) == sources | ledgers
    assert not dead_letters & set(replay.writes)  # a dead letter is never written back to a dead-letter topic
    assert replay.transactional_ids == (kafka_acls.DLQ_REPLAY_TRANSACTIONAL_PREFIX,)


def test_bindings_are_the_grants_of_one_cluster() -> None:
    local = bindings(kafka_acls.LOCAL)
    assert len(local) == sum(len(grants(r)) for r in access_table() if r.cluster == kafka_acls.LOCAL)
    remote = bindings(kafka_acls.REMOTE)
    assert {b.principal for b in remote} == {"User:generator", "User:mirror"}
    assert all(b.host == "*" for b in (*local, *remote))


def test_the_readme_shows_the_table() -> None:
    assert kafka_acls.markdown() in (REPO_ROOT / "README.md").read_text()


# -- the broker's configuration ---------------------------------------------------------------------------
def _ctx(tmp_path: Path, secure: bool) -> StackContext:
    return StackContext.create(StackSettings(home=str(tmp_path), secure=secure))


@pytest.mark.parametrize("sasl", [False, True])
def test_the_secure_broker_authenticates_encrypts_and_authorizes(tmp_path: Path, sasl: bool) -> None:
    ctx = _ctx(tmp_path, secure=True)
    broker = KafkaBroker("remote_kafka" if sasl else "kafka", sasl=sasl)
    lines = broker._properties(ctx, tmp_path).splitlines()
    assert any(line.startswith("listeners=SASL_SSL://") for line in lines)
    assert "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT" in lines
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in lines
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert f"ssl.keystore.location={ctx.tls.server(broker.name).bundle}" in lines
    users = broker.credentials(ctx)
    assert set(users) == {"broker", "admin", *kafka_acls.principals(broker.cluster)}
    assert len(set(users.values())) == len(users)  # a password of its own each, generated
    exports = broker.exports(ctx)
    prefix = "REMOTE_KAFKA_" if sasl else "KAFKA_"
    assert exports[f"{prefix}SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exports[f"{prefix}SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert exports[f"{prefix}SASL_USERNAME"] == "admin"
    assert exports[f"{prefix}SSL_CA_LOCATION"] == str(ctx.tls.cert)


def test_the_switch_off_leaves_the_brokers_as_they_were(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=False)
    local = KafkaBroker("kafka", sasl=False)
    text = local._properties(ctx, tmp_path)
    assert "SASL" not in text and "ssl." not in text and "authorizer" not in text
    assert local.exports(ctx) == {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ctx.settings.kafka_port}"}
    remote = KafkaBroker("remote_kafka", sasl=True)
    assert "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT" in remote._properties(
        ctx, tmp_path
    )
    assert set(remote.exports(ctx)) == {
        "REMOTE_KAFKA_BOOTSTRAP_SERVERS",
        "REMOTE_KAFKA_SECURITY_PROTOCOL",
        "REMOTE_KAFKA_SASL_MECHANISM",
        "REMOTE_KAFKA_SASL_USERNAME",
        "REMOTE_KAFKA_SASL_PASSWORD",
    }
    assert not (ctx.paths.secrets / "tls").exists()


# -- the clients' CA setting --------------------------------------------------------------------------------
def test_the_ca_setting_reaches_librdkafka(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "enricher",
        "KAFKA_SASL_PASSWORD": "secret",  # pragma: allowlist secret
        "KAFKA_SSL_CA_LOCATION": str(ca),
    }
    config = KafkaSettings.from_mapping(env).client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["ssl.ca.location"] == str(ca)
    assert KafkaSettings.from_client_config(config).client_config() == config
    plaintext = KafkaSettings(ssl_ca_location=str(ca)).client_config()
    assert "ssl.ca.location" not in plaintext


def test_bad_security_values_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^KAFKA_SSL_CA_LOCATION: no such file .*missing\.crt$"):
        KafkaSettings(security_protocol="SSL", ssl_ca_location=str(tmp_path / "missing.crt")).client_config()
    with pytest.raises(ValueError, match=r"^REMOTE_KAFKA_SSL_CA_LOCATION: no such file"):
        RemoteKafkaSettings(
            security_protocol="SSL", ssl_ca_location=str(tmp_path / "missing.crt"), sasl_mechanism=None
        ).client_config()
    with pytest.raises(ValidationError, match="unknown security protocol 'SASL_TLS'"):
        KafkaSettings(security_protocol="SASL_TLS")
    with pytest.raises(ValidationError, match="unknown SASL mechanism 'SCRAM-SHA-1'"):
        KafkaSettings(sasl_mechanism="SCRAM-SHA-1")


def test_a_service_is_given_its_own_principal_on_a_secure_stack(tmp_path: Path) -> None:
    assert service_kafka_env(_ctx(tmp_path / "plain", secure=False), "enricher") == {}
    ctx = _ctx(tmp_path / "secure", secure=True)
    env = service_kafka_env(ctx, "mirror")
    password = KafkaBroker("kafka", sasl=False).credentials(ctx)["mirror"]
    assert env == {
        "KAFKA_SASL_USERNAME": "mirror",
        "KAFKA_SASL_PASSWORD": password,
        "REMOTE_KAFKA_SASL_USERNAME": "mirror",
        "REMOTE_KAFKA_SASL_PASSWORD": password,
    }
    assert password == KafkaBroker("remote_kafka", sasl=True).credentials(ctx)["mirror"]
    assert password != KafkaBroker("kafka", sasl=False).credentials(ctx)["admin"]


def test_the_stack_clients_follow_the_exported_security(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    env = {**KafkaBroker("kafka", sasl=False).exports(ctx), **KafkaBroker("remote_kafka", sasl=True).exports(ctx)}
    for config in (local_client_config(env), remote_client_config(env)):
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.username"] == "admin"
        assert config["ssl.ca.location"] == str(ctx.tls.cert)


def test_a_broker_formatted_in_the_other_mode_is_one_clear_error(tmp_path: Path) -> None:
    """Switching FREIGHTLINE_SECURE on a stack with data: the plain broker's storage has no SCRAM users."""
    plain = _ctx(tmp_path, secure=False)
    broker = KafkaBroker("kafka", sasl=False)
    data = plain.paths.data / broker.name
    data.mkdir(parents=True)
    plain.paths.ensure()
    (data / "meta.properties").write_text("formatted before the switch existed\n")
    broker.prepare(plain)  # the same mode: nothing to do
    with pytest.raises(RuntimeError, match=r"^kafka: its data was made with FREIGHTLINE_SECURE=false .*--fresh"):
        broker.prepare(_ctx(tmp_path, secure=True))
