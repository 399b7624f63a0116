from __future__ import annotations

import configparser
from pathlib import Path

from deploy.local.components import KafkaBroker, Postgres, Program
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.local.supervision import render_config, socket_path


def _ctx(tmp_path: Path) -> StackContext:
    return StackContext.create(StackSettings(home=str(tmp_path), stop_timeout_s=7))


def test_rendered_config_stops_whole_process_groups(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    program = Program(command=["java", "-cp", "a b/*", "Main"], environment={"A": "1"}, stop_signal="INT")
    parser = configparser.RawConfigParser()
    parser.read_string(render_config(ctx, [(Postgres(), program)]))
    section = parser["program:postgres"]
    assert section["command"] == "java -cp 'a b/*' Main"
    assert section["stopsignal"] == "INT"
    assert section["stopwaitsecs"] == "7"
    assert section["stopasgroup"] == section["killasgroup"] == "true"
    assert section["autostart"] == "false"
    assert section["stdout_logfile"] == str(ctx.paths.log("postgres"))
    assert 'A="1"' in section["environment"]
    assert parser["unix_http_server"]["file"] == str(socket_path(ctx))


def test_long_state_paths_get_a_short_socket(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path / ("x" * 120))
    assert len(str(socket_path(ctx))) < 100


def test_components_have_distinct_ports_and_exports(tmp_path: Path) -> None:
    stack = Stack(_ctx(tmp_path))
    ports = [port for c in stack.components for port in c.ports(stack.ctx).values()]
    assert len(ports) == len(set(ports))
    assert {"KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "SCHEMA_REGISTRY_URL"} <= set(
        KafkaBroker("kafka", sasl=False).exports(stack.ctx)
        | Postgres().exports(stack.ctx)
        | {"SCHEMA_REGISTRY_URL": ""}
    )


def test_remote_credentials_come_from_configuration_or_state(tmp_path: Path) -> None:
    settings = StackSettings(home=str(tmp_path), remote_sasl_password="given")  # type: ignore[arg-type]
    ctx = StackContext.create(settings)
    broker = KafkaBroker("remote_kafka", sasl=True)
    assert broker.credentials(ctx)["mirror"] == "given"
    generated = KafkaBroker("remote_kafka", sasl=True).credentials(_ctx(tmp_path / "other"))
    assert generated["mirror"] != "given" and len(generated["mirror"]) >= 24
    assert generated == KafkaBroker("remote_kafka", sasl=True).credentials(_ctx(tmp_path / "other"))
