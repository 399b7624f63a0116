"""The local stack: real brokers, SASL on the remote cluster, clean start and stop."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from deploy.local.components import KafkaBroker, Postgres, new_cluster_id
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack, StackError
from tests.integration.stack.support import private_stack_context

pytestmark = pytest.mark.integration


def _admin(config: dict[str, str]) -> AdminClient:
    return AdminClient({**config, "socket.timeout.ms": 3000})


def test_remote_cluster_accepts_right_credentials(stack_env: dict[str, str]) -> None:
    admin = _admin(
        {
            "bootstrap.servers": stack_env["REMOTE_KAFKA_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": stack_env["REMOTE_KAFKA_SASL_USERNAME"],
            "sasl.password": stack_env["REMOTE_KAFKA_SASL_PASSWORD"],
        }
    )
    assert admin.list_topics(timeout=10).brokers


def test_remote_cluster_rejects_wrong_credentials(stack_env: dict[str, str]) -> None:
    errors: list[str] = []
    config: dict[str, Any] = {
        "bootstrap.servers": stack_env["REMOTE_KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": stack_env["REMOTE_KAFKA_SASL_USERNAME"],
        "sasl.password": "not-the-password",
        "error_cb": lambda error: errors.append(str(error)),
    }
    admin = AdminClient(config)
    with pytest.raises(Exception):  # noqa: B017 - librdkafka reports a transport failure
        admin.list_topics(timeout=5)
    admin.poll(1)  # serves the error callbacks
    assert any("Authentication failed" in e or "SASL" in e for e in errors), errors


def test_remote_cluster_rejects_plaintext(stack_env: dict[str, str]) -> None:
    from confluent_kafka import KafkaException

    from deploy.processes import remote_kafka_env
    from services.common.settings import RemoteKafkaSettings

    sasl = RemoteKafkaSettings.from_mapping(remote_kafka_env(stack_env))
    assert _admin(sasl.client_config()).list_topics(timeout=30).brokers  # the broker answers over SASL
    admin = _admin({"bootstrap.servers": stack_env["REMOTE_KAFKA_BOOTSTRAP_SERVERS"]})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_local_postgres_answers(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None and row[0] == "freightline"


def _private_stack(tmp_path: Path) -> Stack:
    """A second stack (brokers + PostgreSQL) on free ports under a temporary state directory."""
    ctx = private_stack_context(tmp_path)
    return Stack(ctx, [KafkaBroker("kafka", sasl=False), KafkaBroker("remote_kafka", sasl=True), Postgres()])


def test_up_then_down_leaves_no_process(tmp_path: Path) -> None:
    stack = _private_stack(tmp_path)
    env = stack.up()
    try:
        pids = stack.pids()
        assert len(pids) == 4  # supervisord + three servers
        assert all(psutil.pid_exists(pid) for pid in pids)
        assert set(env) >= {"KAFKA_BOOTSTRAP_SERVERS", "REMOTE_KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN"}
        assert stack.ctx.paths.env_file.exists()
        assert all(row.ready for row in stack.status())
        for component in stack.components:
            assert stack.ctx.paths.log(component.name).stat().st_size > 0
        # A second up is idempotent while everything runs.
        assert stack.up() == env
    finally:
        children = [c.pid for pid in stack.pids() for c in psutil.Process(pid).children(recursive=True)]
        stack.down()
    for pid in [*pids, *children]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for component in stack.components:
        for port in component.ports(stack.ctx).values():
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{component.name} still listens on {port}"
    assert not stack.ctx.paths.env_file.exists()

    # Data persists: the formatted KRaft logs and the database cluster are reused by the next up.
    kafka_meta = stack.ctx.paths.data / "kafka" / "meta.properties"
    assert kafka_meta.exists()
    cluster_id = kafka_meta.read_text()
    stack.up()
    try:
        assert kafka_meta.read_text() == cluster_id
    finally:
        stack.down()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    stack = _private_stack(tmp_path)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", stack.ctx.settings.postgres_port))
    blocker.listen()
    try:
        with pytest.raises(StackError, match=rf"port {stack.ctx.settings.postgres_port} \(postgres sql\)"):
            stack.up()
    finally:
        blocker.close()
        stack.down()


def test_unknown_component_is_a_clear_error() -> None:
    stack = Stack(StackContext.create(StackSettings(home=f"/tmp/freightline-{uuid.uuid4().hex}")))
    with pytest.raises(StackError, match="unknown component 'nope'"):
        stack.component("nope")


@pytest.mark.parametrize("sasl", [False, True], ids=["plaintext", "sasl"])
def test_cluster_id_beginning_with_a_dash_formats(tmp_path: Path, sasl: bool) -> None:
    """About one random base64url id in 32 begins with "-"; the storage tool must not read it as an option."""
    ctx = _private_stack(tmp_path).ctx
    broker = KafkaBroker("remote_kafka" if sasl else "kafka", sasl=sasl)
    broker.prepare(ctx)  # writes the properties and formats with a random id
    meta = ctx.paths.data / broker.name / "meta.properties"
    meta.unlink()
    cluster_id = "-" + new_cluster_id()[1:]
    broker.format_storage(ctx, cluster_id)
    assert f"cluster.id={cluster_id}" in meta.read_text().splitlines()
