"""The TLS and registry-role settings: bad values are one clear error naming the setting, good ones reach the
clients (confluent-kafka's configuration keys, the services' registry client, libpq and JDBC parameters, pymongo's
TLS options, the WebHDFS and GCS clients' trusted CAs)."""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError

from deploy.local.tls import PrivateCA
from services.common.entrypoint import describe
from services.common.https import TrustingSession, https_session
from services.common.mongodb import mongo_client
from services.common.registry import RegistryClient
from services.common.serde import AvroSerde, registry_client
from services.common.settings import GcsSettings, HdfsSettings, MongoSettings, PostgresSettings, SchemaRegistrySettings
from services.schema_registry.settings import RegistryServerSettings
from services.sink_gcs.store import gcs_client
from services.sink_hdfs.target import store_for as hdfs_store_for


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


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("?tls=true&tlsCAFile=/nowhere/ca.crt", "tlsCAFile: no readable file at /nowhere/ca.crt"),
        ("?tlsCAFile={ca}", "tlsCAFile is set but tls=true is not"),
        ("?tls=true&tlsCAFile={ca}&tlsAllowInvalidCertificates=true", "tlsallowinvalidcertificates turns the"),
        ("?tls=true&tlsInsecure=true", "tlsinsecure turns the certificate checks off"),
        ("?ssl=true&tlsAllowInvalidHostnames=1", "tlsallowinvalidhostnames turns the"),
    ],
)
def test_bad_mongodb_tls_options_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, ca: str, query: str, problem: str
) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:17017/" + query.format(ca=ca))
    with pytest.raises(ValidationError) as error:
        MongoSettings()
    assert _one_line(error.value).startswith("configuration error: MONGODB_URI: ")
    assert problem in str(error.value)


def test_good_mongodb_tls_options_reach_the_client(ca: str) -> None:
    uri = f"mongodb://127.0.0.1:17017/?tls=true&tlsCAFile={ca}"
    assert MongoSettings.from_mapping({"MONGODB_URI": uri, "MONGODB_DATABASE": "d"}).uri == uri
    assert MongoSettings(uri="mongodb://127.0.0.1:17017").uri == "mongodb://127.0.0.1:17017"  # plain: as before
    client = mongo_client(MongoSettings(uri=uri))  # connects lazily: nothing is dialled here
    try:
        options = client.options.pool_options._ssl_context
        assert options is not None and options.check_hostname and options.verify_mode == ssl.CERT_REQUIRED
    finally:
        client.close()


@pytest.mark.parametrize(("prefix", "settings"), [("HDFS_", HdfsSettings), ("GCS_", GcsSettings)])
def test_a_missing_storage_ca_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str, settings: type[HdfsSettings | GcsSettings]
) -> None:
    monkeypatch.setenv(f"{prefix}SSL_CA_LOCATION", str(tmp_path / "missing.crt"))
    with pytest.raises(ValidationError) as error:
        settings()
    assert _one_line(error.value).startswith(f"configuration error: {prefix}SSL_CA_LOCATION: ")
    assert "no readable file at" in str(error.value)


def test_the_storage_cas_of_a_stack_env_reach_the_http_clients(ca: str) -> None:
    env = {
        "HDFS_WEBHDFS_URL": "https://127.0.0.1:18870",
        "HDFS_NAMENODE_URI": "hdfs://127.0.0.1:18020",
        "HDFS_SSL_CA_LOCATION": ca,
        "GCS_ENDPOINT": "https://127.0.0.1:14443",
        "GCS_BUCKET": "b",
        "GCS_SSL_CA_LOCATION": ca,
        "MONGODB_URI": "mongodb://127.0.0.1:17017",
    }
    hdfs = HdfsSettings.from_mapping(env)
    assert (hdfs.webhdfs_url, hdfs.ssl_ca_location) == ("https://127.0.0.1:18870", ca)
    # WebHDFS: the NameNode and the DataNodes it redirects to are checked against the CA alone
    assert hdfs_store_for(hdfs).client._session.verify == ca
    assert hdfs_store_for(HdfsSettings(webhdfs_url="http://h:1")).client._session.verify is True  # the system's
    gcs = GcsSettings.from_mapping(env)
    assert (gcs.endpoint, gcs.bucket, gcs.ssl_ca_location) == ("https://127.0.0.1:14443", "b", ca)
    client = gcs_client(gcs)
    assert client._http.verify == ca
    assert client._connection.API_BASE_URL == "https://127.0.0.1:14443"
    assert gcs_client(GcsSettings(endpoint="http://127.0.0.1:14443"))._http.verify is True  # as before


def test_a_configured_ca_wins_over_the_environments_bundle(monkeypatch: pytest.MonkeyPatch, ca: str) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    url = "https://127.0.0.1:18870/webhdfs/v1/"
    # a plain session gives the environment's bundle precedence over its own ``verify``
    plain = requests.Session()
    plain.verify = ca
    assert plain.merge_environment_settings(url, {}, None, None, None)["verify"] == os.environ["REQUESTS_CA_BUNDLE"]
    session = https_session(ca)
    assert session.merge_environment_settings(url, {}, None, None, None)["verify"] == ca
    assert session.merge_environment_settings(url, {}, None, False, None)["verify"] is False  # a request's own wins
    assert not isinstance(https_session(None), TrustingSession)  # no CA: requests' defaults, as before
    for client_session in (
        hdfs_store_for(HdfsSettings(ssl_ca_location=ca)).client._session,
        gcs_client(GcsSettings(endpoint="https://127.0.0.1:14443", ssl_ca_location=ca))._http,
    ):
        assert client_session.merge_environment_settings(url, {}, None, None, None)["verify"] == ca
