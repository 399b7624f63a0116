"""The Airflow component's configuration (pure: no Airflow, no database) and the main job stage's day."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from pydantic import SecretStr

from deploy.airflow_stage import run_day
from deploy.local.airflow import AirflowApiServer, airflow_environment
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings


def _ctx(tmp_path: Path, **settings: Any) -> StackContext:
    return StackContext.create(StackSettings(home=str(tmp_path / "home"), **settings))


def test_the_environment_points_at_the_configured_database_ports_and_state(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, postgres_port=25432, airflow_port=28280, airflow_database="af", airflow_parallelism=3)
    env = airflow_environment(ctx)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://freightline@127.0.0.1:25432/af"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:28280/execution/"
    assert env["AIRFLOW_CONN_FREIGHTLINE_WAREHOUSE"] == "postgresql://freightline@127.0.0.1:25432/freightline"
    assert env["AIRFLOW_HOME"].startswith(str(ctx.paths.home))
    assert AirflowApiServer().exports(ctx)["AIRFLOW_API_URL"] == "http://127.0.0.1:28280"


def test_the_admin_password_is_generated_once_into_the_secrets(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    server = AirflowApiServer()
    server.prepare(ctx)
    password_file = Path(server.exports(ctx)["AIRFLOW_ADMIN_PASSWORD_FILE"])
    password = password_file.read_text()
    assert len(password) >= 24
    assert password_file.parent == ctx.paths.secrets
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    server.prepare(ctx)
    assert password_file.read_text() == password
    passwords = Path(airflow_environment(ctx)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert passwords.parent == ctx.paths.secrets and password in passwords.read_text()
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600


def test_a_configured_admin_password_wins(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, airflow_admin_password=SecretStr("configured-password"))
    AirflowApiServer().prepare(ctx)
    assert (ctx.paths.secrets / "airflow-admin-password").exists() is False
    assert "configured-password" in (ctx.paths.secrets / "airflow-passwords.json").read_text()


def test_the_dags_start_date_is_configured_or_kept(tmp_path: Path) -> None:
    assert (
        airflow_environment(_ctx(tmp_path, airflow_dags_start_date="2026-03-04"))["FREIGHTLINE_AIRFLOW_DAGS_START_DATE"]
        == "2026-03-04"
    )
    ctx = _ctx(tmp_path / "kept")
    first = airflow_environment(ctx)["FREIGHTLINE_AIRFLOW_DAGS_START_DATE"]
    (ctx.paths.data / "airflow" / "dags-start-date").write_text("2026-01-02")
    assert first != "2026-01-02"
    assert airflow_environment(ctx)["FREIGHTLINE_AIRFLOW_DAGS_START_DATE"] == "2026-01-02"


def test_the_run_day_is_the_utc_day_its_events_begin() -> None:
    ctx = cast(Any, SimpleNamespace(start="2026-11-03T23:30:00-02:00"))
    assert str(run_day(ctx)) == "2026-11-04"
