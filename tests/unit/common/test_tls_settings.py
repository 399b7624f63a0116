"""The TLS and registry-role settings: bad values are one clear error naming the setting, good ones reach the
clients (confluent-kafka's configuration keys, the services' registry client, libpq and JDBC parameters)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.local.tls import PrivateCA
from services.common.entrypoint import describe
from services.common.registry import RegistryClient
from services.common.serde import AvroSerde, registry_client
from services.common.settings import PostgresSettings, SchemaRegistrySettings
from services.schema_registry.settings import RegistryServerSettings


@pytest.fixture
def ca(tmp_path: Path) -> str:
    return str(PrivateCA(tmp_path / "ca").ensure())


def _one_line(error: ValidationError) -> str:
    line = describe(error)
    assert "\n" not in line
    return line


def test_registry_client_settings_reach_both_clients(monkeypatch: pytest.MonkeyPatch, ca: str) -> None:
    url = f"https://admin:{secrets.token_urlsafe(8)}@127.0.0.1:18081"
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", url)
    monkeypatch.setenv("SCHEMA_REGISTRY_SSL_CA_LOCATION", ca)
    monkeypatch.setenv("SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS", "false")
    settings = SchemaRegistrySettings()
    assert settings.client_config() == {"url": url, "ssl.ca.location": ca}
    client = registry_client(settings)
    assert client.url == "https://127.0.0.1:18081"  # what error messages show: no credentials
    assert client._ssl is not None and len(client._ssl.get_ca_certs()) == 1  # the CA, and only it, is trusted
    assert client._ssl.check_hostname
    assert client.auto_register is False and AvroSerde(client).auto_register is False
    assert AvroSerde(client, auto_register=True).auto_register is True
    assert AvroSerde(RegistryClient("http://127.0.0.1:1")).auto_register is True  # the default


def test_bad_registry_client_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_SSL_CA_LOCATION", str(tmp_path / "missing.crt"))
    with pytest.raises(ValidationError) as error:
        SchemaRegistrySettings()
    assert _one_line(error.value).startswith("configuration error: SCHEMA_REGISTRY_SSL_CA_LOCATION: ")
    assert "no readable file at" in str(error.value)
    monkeypatch.delenv("SCHEMA_REGISTRY_SSL_CA_LOCATION")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "127.0.0.1:18081")
    with pytest.raises(ValidationError) as error:
        SchemaRegistrySettings()
    assert _one_line(error.value).startswith("configuration error: SCHEMA_REGISTRY_URL: ")
    assert "expected http(s)://host:port" in str(error.value)


def test_the_registry_server_serves_https_with_a_certificate_and_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = PrivateCA(tmp_path / "ca").server("schema_registry")
    assert not RegistryServerSettings().https
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_SSL_CERTFILE", str(files.cert))
    with pytest.raises(ValidationError, match="SCHEMA_REGISTRY_SERVER_SSL_KEYFILE must be set too"):
        RegistryServerSettings()
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_SSL_KEYFILE", str(tmp_path / "missing.key"))
    with pytest.raises(ValidationError) as error:
        RegistryServerSettings()
    assert _one_line(error.value).startswith("configuration error: SCHEMA_REGISTRY_SERVER_SSL_KEYFILE: ")
    monkeypatch.setenv("SCHEMA_REGISTRY_SERVER_SSL_KEYFILE", str(files.key))
    assert RegistryServerSettings().https


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://u@h:1/db?sslmode=verify_full", "sslmode 'verify_full' is not one of"),
        ("postgresql://u@h:1/db?sslmode=verify-full&sslrootcert=/nowhere/ca.crt", "no readable file at /nowhere"),
        ("host=h user=u dbname=db sslrootcert=/nowhere/ca.crt", "no readable file at /nowhere"),
    ],
)
def test_bad_postgres_tls_parameters_name_the_setting(monkeypatch: pytest.MonkeyPatch, dsn: str, problem: str) -> None:
    for variable, settings in (
        ("POSTGRES_DSN", PostgresSettings),
        ("SCHEMA_REGISTRY_SERVER_DATABASE_DSN", RegistryServerSettings),
    ):
        monkeypatch.setenv(variable, dsn)
        with pytest.raises(ValidationError) as error:
            settings()
        assert _one_line(error.value).startswith(f"configuration error: {variable}: ")
        assert problem in str(error.value)
        monkeypatch.delenv(variable)


def test_good_postgres_tls_parameters_pass(ca: str) -> None:
    dsn = f"postgresql://u@h:1/db?sslmode=verify-full&sslrootcert={ca}"
    assert PostgresSettings(dsn=dsn).dsn == dsn
    assert PostgresSettings(dsn="postgresql://u@h:1/db?sslmode=verify-full&sslrootcert=system").dsn.endswith("system")
    assert RegistryServerSettings(database_dsn=f"host=h dbname=db sslmode=require sslrootcert={ca}").database_dsn


def test_registry_settings_from_a_stack_env(monkeypatch: pytest.MonkeyPatch, ca: str) -> None:
    monkeypatch.delenv("SCHEMA_REGISTRY_URL", raising=False)
    env = {
        "SCHEMA_REGISTRY_URL": f"https://admin:{secrets.token_urlsafe(8)}@127.0.0.1:1",
        "SCHEMA_REGISTRY_SSL_CA_LOCATION": ca,
        "SCHEMA_REGISTRY_READ_ONLY_USER_INFO": "reader:r",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:2",
    }
    settings = SchemaRegistrySettings.from_mapping(env)
    assert (settings.url, settings.ssl_ca_location) == (env["SCHEMA_REGISTRY_URL"], ca)
    assert settings.basic_auth_user_info is None
    assert SchemaRegistrySettings.from_mapping({}).url == "http://127.0.0.1:18081"
