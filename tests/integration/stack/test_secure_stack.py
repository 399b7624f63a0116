"""``FREIGHTLINE_SECURE``: the stack's PostgreSQL takes TLS connections only and its registry serves HTTPS only, both
with server certificates of the stack's private CA; clients trust that CA through a setting and check the server's
name. A PostgreSQL and a registry of the test's own (the stack's component classes, free ports, a temporary state
directory), started once for the module."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from confluent_kafka.schema_registry import Schema as ConfluentSchema
from confluent_kafka.schema_registry import SchemaRegistryClient

from deploy.local.components import Postgres, SchemaRegistry
from deploy.local.context import POSTGRES_OS_USER, StackContext
from deploy.local.tls import PrivateCA
from services.common.endpoints import UnreachableEndpoint, registry_endpoint, require_reachable
from services.common.registry import RegistryClient, Schema, SchemaRegistryError
from services.common.serde import registry_client
from services.common.settings import SchemaRegistrySettings
from tests.integration.schema_registry.stack_roles import check_roles, record_schema, split_url
from tests.integration.stack.support import running_secure_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackContext, dict[str, str]]]:
    ports = ("postgres_port", "schema_registry_port")
    with running_secure_stack(tmp_path_factory.mktemp("secure"), ports, [Postgres(), SchemaRegistry()]) as (stack, env):
        yield stack.ctx, env


@pytest.fixture(scope="module")
def env(secure_stack: tuple[StackContext, dict[str, str]]) -> dict[str, str]:
    return secure_stack[1]


@pytest.fixture
def untrusted_ca(tmp_path: Path) -> str:
    """Another CA's certificate: it signed nothing the servers present."""
    return str(PrivateCA(tmp_path / "other-ca").ensure())


def test_the_stack_exports_https_and_verify_full_endpoints(
    secure_stack: tuple[StackContext, dict[str, str]], env: dict[str, str]
) -> None:
    ctx, _ = secure_stack
    assert env["SCHEMA_REGISTRY_URL"].startswith("https://")
    assert env["SCHEMA_REGISTRY_SSL_CA_LOCATION"] == str(ctx.tls.cert)
    query = parse_qs(urlsplit(env["POSTGRES_DSN"]).query)
    assert query == {"sslmode": ["verify-full"], "sslrootcert": [str(ctx.tls.cert)]}
    # PostgreSQL reads its key from a file only its own user can read.
    key = Postgres().tls_dir(ctx) / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert key.owner() == POSTGRES_OS_USER


def test_registry_over_https_with_the_ca(env: dict[str, str], unique_name: Callable[[str], str]) -> None:
    subject = f"{unique_name('https')}-value"
    schema = record_schema("Parcel", "id")["schema"]
    # confluent-kafka's client (the deploy tools and tests), trusting the CA through ``ssl.ca.location``
    config = SchemaRegistrySettings(
        url=env["SCHEMA_REGISTRY_URL"], ssl_ca_location=env["SCHEMA_REGISTRY_SSL_CA_LOCATION"]
    ).client_config()
    with SchemaRegistryClient(config) as admin:
        schema_id = admin.register_schema(subject, ConfluentSchema(schema, "AVRO"))
    # the services' own client, as a service of the main job configures it (read-only user)
    url, _ = split_url(env["SCHEMA_REGISTRY_URL"])
    reader = registry_client(
        SchemaRegistrySettings(
            url=url,
            basic_auth_user_info=env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"],  # type: ignore[arg-type]
            ssl_ca_location=env["SCHEMA_REGISTRY_SSL_CA_LOCATION"],
        )
    )
    assert json.loads(reader.get_schema(schema_id).schema_str) == json.loads(schema)
    assert reader.lookup_schema(subject, Schema(schema)).schema_id == schema_id
    # a service's start-up probe of the registry passes
    require_reachable(
        [registry_endpoint(SchemaRegistrySettings(url=url, ssl_ca_location=env["SCHEMA_REGISTRY_SSL_CA_LOCATION"]))],
        10,
    )


def test_the_roles_hold_over_https(env: dict[str, str], unique_name: Callable[[str], str]) -> None:
    check_roles(env, f"{unique_name('roles')}-value")


def test_a_registry_certificate_from_an_untrusted_ca_is_rejected(env: dict[str, str], untrusted_ca: str) -> None:
    url = env["SCHEMA_REGISTRY_URL"]
    with pytest.raises(SchemaRegistryError) as error:
        RegistryClient(url, ssl_ca_location=untrusted_ca).get_compatibility()
    assert "the registry's certificate is not trusted (unable to get local issuer certificate)" in str(error.value)
    assert "@" not in str(error.value)  # the URL's credentials stay out of the message
    # without a CA setting: the system's CAs, which do not know the stack's either
    with pytest.raises(SchemaRegistryError, match="certificate is not trusted"):
        RegistryClient(url).get_compatibility()
    # confluent-kafka's client
    with (
        SchemaRegistryClient({"url": url, "ssl.ca.location": untrusted_ca, "max.retries": 0}) as confluent,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        confluent.get_subjects()
    # a service at start-up: one line naming the setting
    settings = SchemaRegistrySettings(url=url, ssl_ca_location=untrusted_ca)
    with pytest.raises(UnreachableEndpoint) as unreachable:
        require_reachable([registry_endpoint(settings)], 5)
    assert str(unreachable.value).startswith("unreachable endpoint: SCHEMA_REGISTRY_URL (https://")
    assert "CERTIFICATE_VERIFY_FAILED" in str(unreachable.value)


def test_plain_http_to_the_https_port_is_rejected(env: dict[str, str]) -> None:
    url, _ = split_url(env["SCHEMA_REGISTRY_URL"])
    plain = url.replace("https://", "http://", 1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{plain}/healthz", timeout=10)
    with pytest.raises(SchemaRegistryError) as error:
        RegistryClient(plain, retries=0).get_compatibility()
    assert error.value.http_status_code == -1


def test_postgres_verify_full_with_the_ca_connects_over_tls(env: dict[str, str]) -> None:
    with psycopg.connect(env["POSTGRES_DSN"], connect_timeout=10) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        # the registry's own connections are TLS too (no other rule would let them in)
        others = conn.execute(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None and row[0] is True and row[1].startswith("TLSv1.")
    assert others is not None and others[0] >= 1 and others[1] is True


def test_postgres_with_an_untrusted_ca_fails(env: dict[str, str], untrusted_ca: str) -> None:
    dsn = env["POSTGRES_DSN"].replace(parse_qs(urlsplit(env["POSTGRES_DSN"]).query)["sslrootcert"][0], untrusted_ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(dsn, connect_timeout=10)


def test_postgres_refuses_a_connection_without_tls(env: dict[str, str]) -> None:
    dsn = env["POSTGRES_DSN"].split("?", 1)[0] + "?sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry .* no encryption"):
        psycopg.connect(dsn, connect_timeout=10)
