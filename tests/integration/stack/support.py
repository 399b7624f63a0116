"""A stack of the test's own (brokers, PostgreSQL) beside the shared one, for tests that stop or break it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deploy.local.context import StackContext, wipe
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
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
