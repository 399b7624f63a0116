"""
### dbt_build (on the Asset `freightline_warehouse_day`)

Runs when `daily_analytics` publishes a day (the Asset `freightline_warehouse_day`):

1. `load_reference`: `freightline spark load-reference`: the reference topics (latest record per key) into
   `raw.reference_*`, which the snapshots and dimensions read;
2. `dbt` (astronomer-cosmos, watcher execution): `dbt_producer_watcher` runs ONE `dbt build` of the project
   (`dbt/`: models, snapshots, unit and data tests in dependency order) with the dbt executable of its own environment;
   per model a task `<model>.run` follows that build's result for the model, then `<model>.test` for the model's tests
   (Cosmos' `TestBehavior.AFTER_EACH`; snapshots have one task), so the graph shows each model with its tests after
   it, at the cost of one dbt invocation instead of one or two per model (the watcher mode has no `BUILD` rendering);
3. `source_freshness`: `freightline dbt source freshness` (warn after 1 day, error after 2: an error fails the task).

Every dbt command records its results in the warehouse (`audit.dbt_results`, labelled with the DAG run's id), where
the main job reads them back. The project is loaded from a manifest `dbt parse` wrote when the stack prepared Airflow
(`FREIGHTLINE_DBT_MANIFEST`), not by running `dbt ls` at every parse of this file. The profile's connection comes
from the Airflow connection `freightline_warehouse` (`AIRFLOW_CONN_FREIGHTLINE_WAREHOUSE`), TLS included (its URI's
`sslmode` and `sslrootcert`).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from dags.common import DEFAULT_ARGS, WAREHOUSE_CONN_ID, WAREHOUSE_DAY, freightline, start_date

REPO_ROOT = Path(__file__).resolve().parent.parent
# the repository's project and dbt environment; an image sets its own (deploy/images/airflow.Dockerfile)
DBT_PROJECT = Path(os.environ.get("DBT_PROJECT_DIR") or REPO_ROOT / "dbt")
DBT_EXECUTABLE = os.environ.get("DBT_EXECUTABLE_PATH") or str(REPO_ROOT / "deploy/bootstrap/envs/dbt/.venv/bin/dbt")
MANIFEST_VARIABLE = "FREIGHTLINE_DBT_MANIFEST"

# The profile's variables (dbt/profiles.yml) from the warehouse connection, rendered when a task runs.
CONN = f"conn.{WAREHOUSE_CONN_ID}"
PROFILE_ENV = {
    "DBT_POSTGRES_HOST": f"{{{{ {CONN}.host }}}}",
    "DBT_POSTGRES_PORT": f"{{{{ {CONN}.port or 5432 }}}}",
    "DBT_POSTGRES_USER": f"{{{{ {CONN}.login }}}}",
    "DBT_POSTGRES_PASSWORD": f"{{{{ {CONN}.password or '' }}}}",
    "DBT_POSTGRES_DBNAME": f"{{{{ {CONN}.schema }}}}",
    # TLS as the connection's URI asks (its query: libpq's sslmode and sslrootcert, the secure stack's verify-full)
    "DBT_POSTGRES_SSLMODE": f"{{{{ {CONN}.extra_dejson.get('sslmode', 'prefer') }}}}",
    "DBT_POSTGRES_SSLROOTCERT": f"{{{{ {CONN}.extra_dejson.get('sslrootcert', '') }}}}",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}


def manifest() -> Path:
    """The manifest ``dbt parse`` wrote at deploy time (``deploy/local/airflow.py``)."""
    path = os.environ.get(MANIFEST_VARIABLE)
    if not path:
        raise RuntimeError(f"{MANIFEST_VARIABLE} is not set: the stack writes it when it prepares Airflow")
    return Path(path)


@dag(
    dag_id="dbt_build",
    schedule=[WAREHOUSE_DAY],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["freightline", "dbt", "warehouse"],
    doc_md=__doc__,
)
def dbt_build() -> None:
    @task.bash(execution_timeout=dt.timedelta(minutes=20))
    def load_reference() -> str:
        """The reference topics into raw.reference_* (Spark; the whole table swapped in one transaction)."""
        return freightline("spark", "load-reference")

    models = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT, manifest_path=manifest(), project_name="freightline", install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="freightline", target_name="local", profiles_yml_filepath=DBT_PROJECT / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=DBT_EXECUTABLE,
        ),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_EACH),
        operator_args={
            "env": PROFILE_ENV,
            "install_deps": False,
            # no triggerer in the stack: each model's task checks the build's result itself, between checks
            # giving its slot back (the build's task needs one)
            "deferrable": False,
            "mode": "reschedule",
            "poke_interval": 10,
            "execution_timeout": dt.timedelta(minutes=30),
        },
        default_args=DEFAULT_ARGS,
    )

    @task.bash(execution_timeout=dt.timedelta(minutes=10))
    def source_freshness() -> str:
        """dbt source freshness: warn after 1 day, error (the task fails) after 2."""
        return freightline("dbt", "source", "freshness")

    load_reference() >> models >> source_freshness()


dbt_build()
