"""Which credentials ``freightline dlq`` uses: its own principals' on a cluster that takes logins, read from the
stack's secrets folder only (never the admin's of the environment); the usual settings on a plain cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from deploy.dlq import as_principal
from deploy.local import kafka_acls
from deploy.local.components import SchemaRegistry, kafka_user_secret
from deploy.local.context import MissingSecret
from deploy.local.settings import StackSettings
from services.common.settings import KafkaSettings, SchemaRegistrySettings

ADMIN_URL = "https://admin:admin-secret@127.0.0.1:18081"  # pragma: allowlist secret


def secure_kafka() -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers="127.0.0.1:19092",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="admin",
        sasl_password=SecretStr("admin-secret"),
    )


def stack_with(tmp_path: Path, **files: str) -> StackSettings:
    secrets = tmp_path / "secrets"
    secrets.mkdir(parents=True)
    for name, value in files.items():
        (secrets / name).write_text(value + "\n")
    return StackSettings(home=str(tmp_path))


@pytest.mark.parametrize("principal", [kafka_acls.DLQ_READER, kafka_acls.DLQ_REPLAY])
def test_a_cluster_with_logins_gets_the_tools_own_principal_and_the_registry_reader(
    tmp_path: Path, principal: str
) -> None:
    stack = stack_with(
        tmp_path,
        **{kafka_user_secret(principal): f"{principal}-pw", SchemaRegistry.secret_name("reader"): "reader-pw"},
    )
    kafka, registry = as_principal(principal, secure_kafka(), SchemaRegistrySettings(url=ADMIN_URL), stack)
    config = kafka.client_config()
    assert (config["sasl.username"], config["sasl.password"]) == (principal, f"{principal}-pw")
    assert config["security.protocol"] == "SASL_SSL"
    assert registry.client_config() == {"url": "https://127.0.0.1:18081", "basic.auth.user.info": "reader:reader-pw"}
    assert not registry.auto_register_schemas


def test_a_missing_credential_is_an_error_naming_the_file_not_the_admins_from_the_environment(
    tmp_path: Path,
) -> None:
    stack = stack_with(tmp_path, **{SchemaRegistry.secret_name("reader"): "reader-pw"})
    with pytest.raises(MissingSecret, match=kafka_user_secret(kafka_acls.DLQ_REPLAY)):
        as_principal(kafka_acls.DLQ_REPLAY, secure_kafka(), SchemaRegistrySettings(url=ADMIN_URL), stack)
    assert not (tmp_path / "secrets" / kafka_user_secret(kafka_acls.DLQ_REPLAY)).exists()  # nothing generated


def test_a_cluster_without_logins_keeps_the_usual_settings(tmp_path: Path) -> None:
    kafka, registry = KafkaSettings(), SchemaRegistrySettings(url=ADMIN_URL)
    assert as_principal(kafka_acls.DLQ_REPLAY, kafka, registry, stack_with(tmp_path)) == (kafka, registry)
