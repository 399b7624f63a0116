"""What the stack's PostgreSQL and registry components configure and export with and without FREIGHTLINE_SECURE, and
how the registry's credentials reach the main job's services, the Flink jobs and the chaos harness's proxies."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from deploy.chaos import _netloc, _via
from deploy.local.components import Postgres, SchemaRegistry
from deploy.local.context import StackContext
from deploy.local.observability_components import Prometheus
from deploy.local.settings import StackSettings
from deploy.local.stack import shown
from deploy.processes import read_only_registry
from services.common.settings import SchemaRegistrySettings
from stream_processors.flink_sql import jdbc_upsert_sink, registry_options


def _ctx(tmp_path: Path, *, secure: bool) -> StackContext:
    return StackContext.create(
        StackSettings(home=str(tmp_path / "home"), secure=secure, postgres_port=15999, schema_registry_port=18999)
    )


def test_without_secure_plain_endpoints_but_registry_roles(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=False)
    registry = SchemaRegistry()
    env = registry.exports(ctx)
    url = urlsplit(env["SCHEMA_REGISTRY_URL"])
    assert (url.scheme, url.hostname, url.port, url.username) == ("http", "127.0.0.1", 18999, "admin")
    reader, _, reader_password = env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"].partition(":")
    assert reader == "reader" and reader_password and reader_password != url.password
    assert "SCHEMA_REGISTRY_SSL_CA_LOCATION" not in env
    program = registry.program(ctx).environment
    assert program["SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS"] == f"admin:{url.password}"
    assert program["SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS"] == env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"]
    assert not any("SSL" in key for key in program)
    # generated once, kept in the secrets folder (mode 0600), the same on the next start
    assert (ctx.paths.secrets / "schema-registry-admin-password").stat().st_mode & 0o077 == 0
    assert registry.exports(ctx) == env
    # PostgreSQL as before: no TLS parameters, no TLS options
    assert Postgres().dsn(ctx, "db") == "postgresql://freightline@127.0.0.1:15999/db"
    assert Postgres().dsn(ctx, "db", sslmode="disable") == "postgresql://freightline@127.0.0.1:15999/db?sslmode=disable"
    assert Postgres().tls_options(ctx) == []


def test_with_secure_https_and_verify_full(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    env = SchemaRegistry().exports(ctx)
    assert env["SCHEMA_REGISTRY_URL"].startswith("https://admin:")
    assert env["SCHEMA_REGISTRY_SSL_CA_LOCATION"] == str(ctx.tls.cert)
    program = SchemaRegistry().program(ctx).environment
    assert Path(program["SCHEMA_REGISTRY_SERVER_SSL_CERTFILE"]).read_text().startswith("-----BEGIN CERTIFICATE")
    assert load_pem_private_key(Path(program["SCHEMA_REGISTRY_SERVER_SSL_KEYFILE"]).read_bytes(), password=None)
    dsn = Postgres().dsn(ctx, "db", pool_max_conns="100")
    assert parse_qs(urlsplit(dsn).query) == {
        "sslmode": ["verify-full"],
        "sslrootcert": [str(ctx.tls.cert)],
        "pool_max_conns": ["100"],
    }
    assert SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"], ssl_ca_location=str(ctx.tls.cert))


@pytest.mark.parametrize("secure", [False, True])
def test_prometheus_scrapes_the_registry_over_https_when_secure(tmp_path: Path, secure: bool) -> None:
    ctx = _ctx(tmp_path, secure=secure)
    (job,) = [job for job in Prometheus().config(ctx)["scrape_configs"] if job["job_name"] == "schema_registry"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:18999"]}]
    if secure:
        assert (job["scheme"], job["tls_config"]) == ("https", {"ca_file": str(ctx.tls.cert)})
    else:
        assert "scheme" not in job and "tls_config" not in job


def test_the_main_jobs_services_get_the_read_only_user() -> None:
    admin, reader = secrets.token_urlsafe(8), f"reader:{secrets.token_urlsafe(8)}"
    env = {
        "SCHEMA_REGISTRY_URL": f"https://admin:{admin}@127.0.0.1:18081",
        "SCHEMA_REGISTRY_READ_ONLY_USER_INFO": reader,
    }
    assert read_only_registry(env) == {
        "SCHEMA_REGISTRY_URL": "https://127.0.0.1:18081",
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": reader,
        "SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS": "false",
    }
    assert read_only_registry({"SCHEMA_REGISTRY_URL": "http://127.0.0.1:18081"}) == {}  # a stack without roles


PASSWORD = secrets.token_urlsafe(8)


@pytest.mark.parametrize(
    ("where", "user_info"), [("url", f"admin:{PASSWORD}"), ("setting", f"ci:{PASSWORD}"), ("nowhere", None)]
)
def test_flink_jobs_pass_the_registry_credentials_explicitly(where: str, user_info: str | None) -> None:
    if where == "url":
        settings = SchemaRegistrySettings(url=f"http://{user_info}@r:1")
    else:
        settings = SchemaRegistrySettings(url="http://r:1", basic_auth_user_info=user_info)  # type: ignore[arg-type]
    options = registry_options(settings)
    assert options["value.avro-confluent.url"] == "http://r:1"
    assert options.get("value.avro-confluent.basic-auth.user-info") == user_info
    assert ("value.avro-confluent.basic-auth.credentials-source" in options) == (user_info is not None)


def test_flink_jobs_trust_the_registrys_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    options = registry_options(SchemaRegistrySettings(url="https://r:1", ssl_ca_location=str(ca)))
    assert options["value.avro-confluent.properties.schema.registry.ssl.truststore.location"] == str(ca)
    assert options["value.avro-confluent.properties.schema.registry.ssl.truststore.type"] == "PEM"
    assert not any("truststore" in key for key in registry_options(SchemaRegistrySettings(url="https://r:1")))


def test_flink_jdbc_sinks_keep_the_dsns_tls_parameters() -> None:
    statement = jdbc_upsert_sink(
        "t", "s.t", ["`k` STRING"], ["k"], "postgresql://u@h:1/db?sslmode=verify-full&sslrootcert=/ca.crt"
    )
    assert "'jdbc:postgresql://h:1/db?user=u&sslmode=verify-full&sslrootcert=/ca.crt'" in statement
    assert "ssl" not in jdbc_upsert_sink("t", "s.t", ["`k` STRING"], ["k"], "postgresql://u@h:1/db")


def test_reports_show_no_registry_credentials() -> None:
    url = f"https://admin:{PASSWORD}@127.0.0.1:18081"
    assert shown("SCHEMA_REGISTRY_URL", url) == "https://admin:***@127.0.0.1:18081"
    assert shown("SCHEMA_REGISTRY_READ_ONLY_USER_INFO", f"reader:{PASSWORD}") == "***"
    assert shown("POSTGRES_DSN", "postgresql://u@h:1/db") == "postgresql://u@h:1/db"


def test_the_chaos_proxies_keep_the_registry_url_scheme_and_credentials() -> None:
    url = f"https://admin:{PASSWORD}@127.0.0.1:18081"
    assert _netloc(url) == "127.0.0.1:18081"
    assert _via(url, "127.0.0.1:4000") == f"https://admin:{PASSWORD}@127.0.0.1:4000"
    assert _via("http://127.0.0.1:18081/", "127.0.0.1:4000") == "http://127.0.0.1:4000/"


def test_the_main_job_gives_services_the_read_only_user_and_the_flink_jobs_the_admin(tmp_path: Path) -> None:
    from deploy.local.stack import Stack
    from deploy.pipeline import Report, RunContext

    ctx = _ctx(tmp_path, secure=False)
    env = SchemaRegistry().exports(ctx)
    run = RunContext(env=env, stack=Stack(ctx, []), report=Report(), run_id="unit", events=1)
    for service in ("services.generator", "services.mirror", "services.enricher", "services.sink_gcs"):
        assert run.service_env(service) == {**env, **read_only_registry(env)}
    assert run.service_env("stream") == env  # Flink's Avro format registers what it writes: the admin
