"""The stack's Apache Airflow 3: an API server (REST API and UI), a scheduler (LocalExecutor) and a DAG processor,
each its own supervised process, all from Airflow's own locked environment (``deploy/bootstrap/envs/airflow``).

- metadata in its own database (``FREIGHTLINE_AIRFLOW_DATABASE``, created by the ``postgres`` component) on the
  stack's PostgreSQL; the API server's program migrates it (``airflow db migrate``, idempotent) before serving;
- DAGs from the repository's ``dags/`` folder (the repository on ``PYTHONPATH``: they import ``dags.common``);
  ``dbt_build`` loads the dbt project from a manifest (``FREIGHTLINE_DBT_MANIFEST``) that ``freightline dbt parse``
  writes under ``data/airflow/dbt`` each time the API server's program starts (before the DAG processor parses
  anything; dbt's partial parsing makes an unchanged project quick);
- ``AIRFLOW_HOME`` under ``data/airflow``, task logs under ``logs/airflow``;
- an ``admin`` user of Airflow's simple auth manager, its password configured or generated once into the state
  directory's ``secrets/`` (the passwords file lives there too); the API's secret key and JWT secret likewise;
- connections and variables from the environment only: ``AIRFLOW_CONN_FREIGHTLINE_WAREHOUSE`` (the stack's
  PostgreSQL), ``AIRFLOW_VAR_FREIGHTLINE_CLI`` (the project's CLI that the tasks run), ``AIRFLOW_VAR_ALERTMANAGER_URL``;
- metrics over StatsD to the stack's ``statsd_exporter`` (``FREIGHTLINE_STATSD_PORT``; lost, harmlessly, when it
  is not running), scraped by Prometheus as the job ``statsd``;
- the tasks' ``freightline`` commands find the stack's endpoints through ``FREIGHTLINE_HOME`` (its ``stack.env``).

A small machine: one API worker, one parsing process, ``FREIGHTLINE_AIRFLOW_PARALLELISM`` task processes.
``AIRFLOW_API_URL`` in ``stack.env``; the REST API takes a bearer token from ``POST /auth/token``.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

from deploy.local import kafka_acls
from deploy.local.components import Component, Postgres, Program, service_kafka_env
from deploy.local.context import REPO_ROOT, StackContext
from services.common.settings import LOCAL_HOST, POSTGRES_DB

AIRFLOW_ENV = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "airflow"
AIRFLOW_BIN = AIRFLOW_ENV / ".venv" / "bin" / "airflow"
DAGS_FOLDER = REPO_ROOT / "dags"
FREIGHTLINE_CLI = REPO_ROOT / ".venv" / "bin" / "freightline"
ADMIN_USER = "admin"
WAREHOUSE_CONNECTION = "freightline_warehouse"


def api_url(ctx: StackContext) -> str:
    return f"http://{LOCAL_HOST}:{ctx.settings.airflow_port}"


def airflow_home(ctx: StackContext) -> Path:
    return ctx.paths.data / "airflow"


def admin_password(ctx: StackContext) -> str:
    configured = ctx.settings.airflow_admin_password
    return ctx.secret("airflow-admin-password", configured.get_secret_value() if configured else None)


def passwords_file(ctx: StackContext) -> Path:
    return ctx.paths.secrets / "airflow-passwords.json"


def dags_start_date(ctx: StackContext) -> str:
    """The configured first day of the daily DAGs, else the day Airflow was first prepared here (kept)."""
    if ctx.settings.airflow_dags_start_date:
        return dt.date.fromisoformat(ctx.settings.airflow_dags_start_date).isoformat()
    path = airflow_home(ctx) / "dags-start-date"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dt.datetime.now(dt.UTC).date().isoformat())
    return path.read_text().strip()


def dbt_manifest(ctx: StackContext) -> Path:
    return airflow_home(ctx) / "dbt" / "manifest.json"


def metrics_environment(statsd_host: str, statsd_port: int) -> dict[str, str]:
    """Airflow's metrics over StatsD to a statsd_exporter (``observability/statsd/mapping.yml``): tags as
    InfluxDB-style tags, without the legacy names that repeat each series with its DAG and task in the name."""
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": statsd_host,
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        "AIRFLOW__METRICS__LEGACY_NAMES_ON": "False",
    }


def airflow_environment(ctx: StackContext) -> dict[str, str]:
    """Everything Airflow's processes (and the ``airflow`` CLI against this stack) read: its configuration,
    connections and variables, all as environment variables."""
    s = ctx.settings
    postgres = Postgres()
    metadata = postgres.dsn(ctx, s.airflow_database).replace("postgresql://", "postgresql+psycopg2://", 1)
    url = api_url(ctx)
    return {
        "AIRFLOW_HOME": str(airflow_home(ctx)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(s.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(s.airflow_parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(ctx)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
        "AIRFLOW__API__HOST": LOCAL_HOST,
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__SECRET_KEY": ctx.secret("airflow-api-secret-key"),
        "AIRFLOW__API_AUTH__JWT_SECRET": ctx.secret("airflow-jwt-secret"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(s.airflow_log_server_port),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(ctx.paths.logs / "airflow"),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        **metrics_environment(LOCAL_HOST, s.statsd_port),
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home(ctx) / "cosmos"),
        "FREIGHTLINE_DBT_MANIFEST": str(dbt_manifest(ctx)),
        f"AIRFLOW_CONN_{WAREHOUSE_CONNECTION.upper()}": postgres.dsn(ctx, POSTGRES_DB),
        "AIRFLOW_VAR_FREIGHTLINE_CLI": str(FREIGHTLINE_CLI),
        "AIRFLOW_VAR_ALERTMANAGER_URL": f"http://{LOCAL_HOST}:{s.alertmanager_port}",
        "FREIGHTLINE_HOME": str(ctx.paths.home),
        "FREIGHTLINE_AIRFLOW_DAGS_START_DATE": dags_start_date(ctx),
        "PYTHONPATH": str(REPO_ROOT),
        # on a secure stack the tasks read Kafka as the batch's principal, not as the stack.env's admin
        **service_kafka_env(ctx, kafka_acls.BATCH),
    }


def health(ctx: StackContext) -> dict[str, Any] | None:
    """``GET /api/v2/monitor/health`` (no authentication): the metadata database, scheduler and DAG processor."""
    import httpx

    try:
        response = httpx.get(f"{api_url(ctx)}/api/v2/monitor/health", timeout=3)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    result: dict[str, Any] = response.json()
    return result


def _healthy(ctx: StackContext, part: str) -> bool:
    status = health(ctx)
    return bool(status and (status.get(part) or {}).get("status") == "healthy")


class _AirflowProcess(Component):
    """One ``airflow <subcommand>`` process of the stack."""

    subcommand: str
    health_part: str

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {}

    def setup(self, ctx: Any, progress: Any) -> None:
        if not AIRFLOW_BIN.exists():
            raise RuntimeError(f"no Airflow environment at {AIRFLOW_ENV}: run deploy/bootstrap/setup.sh (make setup)")

    def command(self, ctx: StackContext) -> list[str]:
        return [str(AIRFLOW_BIN), self.subcommand]

    def program(self, ctx: StackContext) -> Program:
        return Program(command=self.command(ctx), environment=airflow_environment(ctx))

    def ready(self, ctx: StackContext) -> bool:
        return _healthy(ctx, self.health_part)

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {}


class AirflowApiServer(_AirflowProcess):
    """The REST API, the UI and the execution API the task processes report to; migrates the database first."""

    name = "airflow_api_server"
    subcommand = "api-server"
    health_part = "metadatabase"
    depends_on = ("postgres",)
    extra_start_s = 180.0  # the first start creates the metadata database (`db migrate`): minutes on a busy machine

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": ctx.settings.airflow_port}

    def prepare(self, ctx: StackContext) -> None:
        for path in (airflow_home(ctx), ctx.paths.logs / "airflow"):
            path.mkdir(parents=True, exist_ok=True)
        ctx.paths.ensure()
        passwords = passwords_file(ctx)
        passwords.write_text(json.dumps({ADMIN_USER: admin_password(ctx)}))
        passwords.chmod(0o600)

    def command(self, ctx: StackContext) -> list[str]:
        airflow = shlex.quote(str(AIRFLOW_BIN))
        target = dbt_manifest(ctx).parent
        parse = (
            f"DBT_TARGET_PATH={shlex.quote(str(target))} DBT_LOG_PATH={shlex.quote(str(target / 'logs'))} "
            f"{shlex.quote(str(FREIGHTLINE_CLI))} dbt parse --quiet"
        )
        serve = f"{airflow} api-server --host {LOCAL_HOST} --port {ctx.settings.airflow_port} --workers 1"
        return ["/bin/sh", "-c", f"{parse} && {airflow} db migrate && exec {serve}"]

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {
            "AIRFLOW_API_URL": api_url(ctx),
            "AIRFLOW_ADMIN_USER": ADMIN_USER,
            "AIRFLOW_ADMIN_PASSWORD_FILE": str(ctx.paths.secrets / "airflow-admin-password"),
        }


class AirflowScheduler(_AirflowProcess):
    name = "airflow_scheduler"
    subcommand = "scheduler"
    health_part = "scheduler"
    depends_on = ("airflow_api_server",)

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"logs": ctx.settings.airflow_log_server_port}


class AirflowDagProcessor(_AirflowProcess):
    name = "airflow_dag_processor"
    subcommand = "dag-processor"
    health_part = "dag_processor"
    depends_on = ("airflow_api_server",)


def airflow_components() -> list[Component]:
    return [AirflowApiServer(), AirflowScheduler(), AirflowDagProcessor()]
