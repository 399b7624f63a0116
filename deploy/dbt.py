"""Runs the dbt project (``dbt/``) with the dbt executable of its own environment (``deploy/bootstrap/envs/dbt``),
and the ``freightline dbt <args>`` command.

The profile (``dbt/profiles.yml``) reads only ``DBT_POSTGRES_*`` variables; they are derived here from
``POSTGRES_DSN``, the one setting the whole platform uses, so host, port and credentials are written nowhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from psycopg.conninfo import conninfo_to_dict

from deploy.local.context import REPO_ROOT
from deploy.spark import stack_environment
from services.common.settings import PostgresSettings

DBT_PROJECT = REPO_ROOT / "dbt"
DBT_EXECUTABLE = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "dbt" / ".venv" / "bin" / "dbt"
SQLFLUFF_EXECUTABLE = DBT_EXECUTABLE.with_name("sqlfluff")
DEFAULT_PORT = "5432"  # libpq's own default, when the DSN names no port


class DbtError(RuntimeError):
    pass


def profile_environment(dsn: str) -> dict[str, str]:
    """The profile's ``DBT_POSTGRES_*`` variables for a libpq DSN (URL or ``key=value`` form)."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception as error:  # psycopg raises ProgrammingError for a malformed DSN
        raise DbtError(f"POSTGRES_DSN: not a libpq connection string ({error})") from error
    missing = [key for key in ("host", "user", "dbname") if not parts.get(key)]
    if missing:
        raise DbtError(f"POSTGRES_DSN: names no {', '.join(missing)} (postgresql://user[:password]@host[:port]/db)")
    return {
        "DBT_POSTGRES_HOST": str(parts["host"]),
        "DBT_POSTGRES_PORT": str(parts.get("port") or DEFAULT_PORT),
        "DBT_POSTGRES_USER": str(parts["user"]),
        "DBT_POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "DBT_POSTGRES_DBNAME": str(parts["dbname"]),
        "DBT_POSTGRES_SSLMODE": str(parts.get("sslmode") or "prefer"),  # libpq's own default
        "DBT_POSTGRES_SSLROOTCERT": str(parts.get("sslrootcert") or ""),  # empty: libpq's default
    }


def dbt_environment(env: Mapping[str, str], target_path: Path | None = None) -> dict[str, str]:
    """The process environment of a dbt run: ``env``, the profile's variables from its ``POSTGRES_DSN`` (else the
    settings' default), no anonymous usage statistics, and optionally its own target and log folders."""
    dsn = env.get("POSTGRES_DSN") or PostgresSettings().dsn
    if not DBT_EXECUTABLE.exists():
        raise DbtError(f"the dbt environment is missing ({DBT_EXECUTABLE}): run `make setup` first")
    result = {**os.environ, **env, **profile_environment(dsn), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if target_path is not None:
        result["DBT_TARGET_PATH"] = str(target_path)
        result["DBT_LOG_PATH"] = str(target_path / "logs")
    return result


def dbt_command(args: Sequence[str]) -> list[str]:
    """``dbt <args>`` on the project, with its profile."""
    return [str(DBT_EXECUTABLE), *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)]


def run_dbt(
    args: Sequence[str], env: Mapping[str, str], target_path: Path | None = None, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` to the end; the output is captured (and appended to ``log``). Never raises on a dbt
    failure: the caller reads the return code and ``run_results.json``."""
    result = subprocess.run(
        dbt_command(args),
        env=dbt_environment(env, target_path),
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"$ dbt {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    return result


def run_results(target_path: Path) -> dict[str, Any]:
    """The last invocation's ``run_results.json`` (``dbt build``, ``dbt test``, ...)."""
    data: dict[str, Any] = json.loads((target_path / "run_results.json").read_text())
    return data


def freshness_results(target_path: Path) -> dict[str, Any]:
    """The last ``dbt source freshness``'s ``sources.json``."""
    data: dict[str, Any] = json.loads((target_path / "sources.json").read_text())
    return data


def summarize_build(results: Mapping[str, Any]) -> dict[str, int]:
    """Counts of a ``dbt build``: models, snapshots, unit tests and data tests by status."""
    counts: dict[str, int] = {}
    for item in results["results"]:
        kind = item["unique_id"].split(".", 1)[0]  # model, snapshot, test, unit_test, seed
        key = f"{kind}:{item['status']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def summarize_freshness(results: Mapping[str, Any]) -> dict[str, str]:
    """Each source table's freshness status (``pass``, ``warn``, ``error``, ``runtime error``)."""
    return {item["unique_id"].removeprefix("source.freightline."): item["status"] for item in results["results"]}


# -- ``freightline dbt <args>`` ---------------------------------------------------------------------------------------
# every argument goes to dbt as it is, --help included
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def dbt(ctx: typer.Context) -> None:
    """dbt with the given arguments (``freightline dbt build``, ``freightline dbt source freshness``, ...)."""
    _paths, env = stack_environment()  # the process environment wins over the local stack's endpoints
    try:
        command, environment = dbt_command(ctx.args or ["--help"]), dbt_environment(env)
    except DbtError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    raise typer.Exit(subprocess.call(command, env=environment, cwd=DBT_PROJECT))


def lint(env: Mapping[str, str], target_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """sqlfluff (dbt templater, ``dbt/.sqlfluff``) over the project's SQL. The templater compiles the project with
    the profile and connects to the database while doing so: ``env`` needs a reachable ``POSTGRES_DSN``."""
    return subprocess.run(
        [str(SQLFLUFF_EXECUTABLE), "lint", "--disable-progress-bar", "."],
        env=dbt_environment(env, target_path),
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
