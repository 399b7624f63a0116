"""A stack of the test's own (brokers, PostgreSQL) beside the shared one, for tests that stop or break it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
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
