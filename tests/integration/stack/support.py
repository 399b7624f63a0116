"""A stack of the test's own (brokers, PostgreSQL) beside the shared one, for tests that stop or break it."""

from __future__ import annotations

from pathlib import Path

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from tests.integration.registry import free_port


def private_stack_context(tmp_path: Path) -> StackContext:
    """A stack context on free ports with its state under ``tmp_path``, sharing the main stack's jars."""
    main = StackContext.create(StackSettings())
    settings = StackSettings(
        home=str(tmp_path / "home"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        remote_kafka_port=free_port(),
        remote_kafka_controller_port=free_port(),
        postgres_port=free_port(),
        stop_timeout_s=20,
    )
    ctx = StackContext.create(settings)
    ctx.paths.ensure()
    ctx.paths.jars.rmdir()
    ctx.paths.jars.symlink_to(main.paths.jars.resolve())
    return ctx
