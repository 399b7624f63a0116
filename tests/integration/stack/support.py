"""A stack of the test's own (brokers, PostgreSQL) beside the shared one, for tests that stop or break it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from deploy.local.components import Component, KafkaBroker, Postgres, SchemaRegistry
from deploy.local.context import StackContext, wipe
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.local.storage_components import storage_components
from tests.integration.registry import free_port

BROKER_AND_DATABASE_PORTS = (
    "kafka_port",
    "kafka_controller_port",
    "remote_kafka_port",
    "remote_kafka_controller_port",
    "kafka_metrics_port",
    "remote_kafka_metrics_port",
    "postgres_port",
)
# what the services need besides: the registry and the storage servers the sinks write
SERVICE_PORTS = (
    *BROKER_AND_DATABASE_PORTS,
    "schema_registry_port",
    "mongodb_port",
    "hdfs_namenode_port",
    "hdfs_webhdfs_port",
    "gcs_port",
)
# A compressed calendar for a main job's run on such a stack (a step of an order or shipment 2 s of event time, not
# 45 s): a few thousand events span about half a minute of event time, and shipments must have events too (the
# enricher's shipment join, the HDFS sink).
SMALL_WORLD = {"GENERATOR_STEP_S": "2", "GENERATOR_MAX_LATENESS_S": "1"}


def private_stack_context(tmp_path: Path, ports: Sequence[str] = BROKER_AND_DATABASE_PORTS) -> StackContext:
    """A stack context with the ``ports`` settings on free ports and its state under ``tmp_path``, sharing the main
    stack's jars."""
    main = StackContext.create(StackSettings())
    settings = StackSettings.model_validate(
        {"home": str(tmp_path / "home"), "stop_timeout_s": 20, **{port: free_port() for port in ports}}
    )
    ctx = StackContext.create(settings)
    ctx.paths.ensure()
    ctx.paths.jars.rmdir()
    ctx.paths.jars.symlink_to(main.paths.jars.resolve())
    return ctx


def secure_stack_context(tmp_path: Path, ports: Sequence[str]) -> StackContext:
    """A private stack context (``private_stack_context``) with ``FREIGHTLINE_SECURE`` on, sharing the built tools
    (FerretDB, the GCS emulator, toxiproxy) as it shares the jars."""
    ctx = private_stack_context(tmp_path, ports=ports)
    ctx = StackContext(settings=ctx.settings.model_copy(update={"secure": True}), paths=ctx.paths)
    main_bin = StackContext.create(ctx.settings.model_copy(update={"home": ".freightline"})).paths.home / "bin"
    if main_bin.exists():
        (ctx.paths.home / "bin").symlink_to(main_bin.resolve())
    return ctx


def stop_and_wipe(stack: Stack) -> None:
    """Stop a private stack and remove its state, with the PostgreSQL user's folders below /var/tmp (private_dir)."""
    stack.down()
    outside = {link.resolve().parent for link in stack.ctx.paths.data.iterdir() if link.is_symlink()}
    wipe(stack.ctx.paths)
    for folder in outside:  # now empty
        folder.rmdir()


@contextmanager
def running_secure_stack(
    tmp_path: Path, ports: Sequence[str], components: Sequence[Component]
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A private secure stack (``secure_stack_context``) of ``components`` on free ``ports``, up, and its endpoints;
    stopped and wiped afterwards, also when it did not come up."""
    stack = Stack(secure_stack_context(tmp_path, ports=ports), list(components))
    try:
        yield stack, stack.up()
    finally:
        stop_and_wipe(stack)


def secure_service_stack(tmp_path: Path) -> Stack:
    """A private secure stack (``secure_stack_context``) of exactly what the services need: both brokers,
    PostgreSQL, the registry and the storage servers (no Flink, Spark, Airflow or monitoring)."""
    ctx = secure_stack_context(tmp_path, ports=SERVICE_PORTS)
    brokers = [KafkaBroker("kafka", sasl=False), KafkaBroker("remote_kafka", sasl=True)]
    return Stack(ctx, [*brokers, Postgres(), SchemaRegistry(), *storage_components()])
