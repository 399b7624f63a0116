"""The stack's supervisor against a real supervisord: stopping a stack started by an older version, which lacks
components added since (``freightline down`` after an upgrade), stops what runs and skips what never ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.components import Postgres, Program
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.supervision import Supervisor, render_config

pytestmark = pytest.mark.integration


def test_stopping_a_component_the_running_daemon_never_had_stops_the_rest(tmp_path: Path) -> None:
    ctx = StackContext.create(StackSettings(home=str(tmp_path), stop_timeout_s=7))
    ctx.paths.ensure()
    supervisor = Supervisor(ctx)
    supervisor.start_daemon(render_config(ctx, [(Postgres(), Program(command=["sleep", "600"], environment={}))]))
    try:
        supervisor.start("postgres")
        assert supervisor.info()["postgres"]["statename"] == "RUNNING"
        supervisor.stop("airflow_dag_processor")  # added to the stack after this daemon started: nothing to stop
        supervisor.stop("postgres")
        assert supervisor.info()["postgres"]["statename"] == "STOPPED"
    finally:
        supervisor.shutdown()
