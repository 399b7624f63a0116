"""Credentials: no settings class defaults one, ``repr``/``str`` of settings never show one, logs mask them."""

from __future__ import annotations

import importlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from services.common.logging import configure_logging, mask_secrets
from services.common.settings import (
    KafkaSettings,
    MongoSettings,
    PostgresSettings,
    RemoteKafkaSettings,
    SchemaRegistrySettings,
    redact,
    secret_values,
)
from services.schema_registry.settings import RegistryServerSettings

REPO = Path(__file__).resolve().parents[3]
SETTINGS_MODULES = [
    *sorted(f"services.{path.parent.name}.settings" for path in (REPO / "services").glob("*/settings.py")),
    "services.common.sinks.settings",
    "deploy.local.settings",
    "batch_spark.settings",
]
SECRET = "Zq8-not-a-real-secret"  # pragma: allowlist secret


def _subclasses(base: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for cls in base.__subclasses__():
        yield cls
        yield from _subclasses(cls)


def all_settings_classes() -> list[type[BaseSettings]]:
    for module in SETTINGS_MODULES:
        importlib.import_module(module)
    ours = ("services.", "deploy.", "batch_spark")
    return sorted(
        {cls for cls in _subclasses(BaseSettings) if cls.__module__.startswith(ours)},
        key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
    )


def test_no_settings_class_defaults_a_credential() -> None:
    """Every secret field (``SecretStr``, or named like a credential) defaults to nothing, and no default URL
    carries a password: a process that needs a credential gets it from its environment or fails."""
    classes = all_settings_classes()
    assert len(classes) >= 15, [cls.__name__ for cls in classes]
    offenders = []
    for cls in classes:
        for name, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            credential = any(word in name for word in ("password", "secret", "user_info", "token", "users"))
            if (credential or "SecretStr" in str(field.annotation)) and default is not None:
                offenders.append(f"{cls.__name__}.{name}")
            if isinstance(default, str) and redact(default) != default:
                offenders.append(f"{cls.__name__}.{name} (URL with a password)")
    assert offenders == []


def test_repr_and_str_of_settings_never_show_a_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("REMOTE_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"https://reader:{SECRET}@registry:8081")
    monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", f"reader:{SECRET}")
    monkeypatch.setenv("POSTGRES_DSN", f"postgresql://app:{SECRET}@db:5432/freightline")
    monkeypatch.setenv("MONGODB_URI", f"mongodb://sink:{SECRET}@mongo:27017/?tls=true")
    monkeypatch.setenv("MONGODB_PASSWORD", SECRET)
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_DATABASE_DSN", f"postgresql://registry:{SECRET}@db/freightline")
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", f"admin:{SECRET},reader:{SECRET}x")
    for settings in (
        KafkaSettings(),
        RemoteKafkaSettings(),
        SchemaRegistrySettings(),
        PostgresSettings(),
        MongoSettings(),
        RegistryServerSettings(),
    ):
        for text in (repr(settings), str(settings), f"{settings!r}"):
            assert SECRET not in text, text
        assert "***" in repr(settings) or "**********" in repr(settings)
    assert PostgresSettings().dsn.endswith(f":{SECRET}@db:5432/freightline")  # the value itself is untouched


def test_secret_values_are_what_the_settings_hold() -> None:
    values = secret_values(
        KafkaSettings(sasl_password=SecretStr("kafka-pw")),
        SchemaRegistrySettings(basic_auth_user_info=SecretStr("reader:registry-pw")),
        PostgresSettings(dsn="postgresql://app:dsn-pw@db/x"),  # pragma: allowlist secret
        MongoSettings(),
        None,
    )
    assert values == {"kafka-pw", "reader:registry-pw", "registry-pw", "dsn-pw"}


def test_logs_mask_credentials_in_messages_arguments_and_exceptions() -> None:
    stream = io.StringIO()
    configure_logging("svc", "INFO", secrets={SECRET, 'k"e\\y-zz9'})
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("svc.test")
    log.info("connecting with %s", SECRET)
    log.info("dsn %s", "postgresql://app:dsn-only-pw@db:5432/x")  # pragma: allowlist secret
    log.info("quoted %s", 'k"e\\y-zz9')
    try:
        raise RuntimeError(f"authentication failed for password {SECRET}")
    except RuntimeError:
        log.exception("failed")
    output = stream.getvalue()
    assert len(output.splitlines()) == 4
    for leaked in (SECRET, "dsn-only-pw", "y-zz9"):
        assert leaked not in output
    assert output.count("***") == 4  # the argument, the URL, the quoted value, the exception text
    assert "postgresql://app:***@db:5432/x" in output


def test_mask_secrets_leaves_other_text_alone() -> None:
    text = "http://127.0.0.1:18081/subjects and user@example.com, time 12:30"
    assert mask_secrets(text, {"absent"}) == text
