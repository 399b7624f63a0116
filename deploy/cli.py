"""``freightline``: the local stack, the schema governance and the main pipeline job."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deploy.local.context import StackContext
from deploy.local.flink import rest_url as flink_rest_url
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack, StackError, shown

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(stderr=True)
out = Console()


def _stack() -> Stack:
    return Stack(StackContext.create(StackSettings()))


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/bold red] {error}")
    raise typer.Exit(code=1)


def endpoints_table(env: dict[str, str]) -> Table:
    table = Table(title="Local stack endpoints")
    table.add_column("variable")
    table.add_column("value")
    for key, value in env.items():
        table.add_row(key, shown(key, value))
    return table


@app.command()
def setup() -> None:
    """Resolve the stack's Java runtimes from Maven Central (idempotent)."""
    try:
        _stack().setup(_progress)
    except (StackError, RuntimeError) as error:
        _fail(error)


@app.command()
def up(fresh: Annotated[bool, typer.Option(help="Wipe all stack data first.")] = False) -> None:
    """Start every component and wait until each answers; write .freightline/stack.env."""
    stack = _stack()
    try:
        env = stack.up(fresh=fresh, progress=_progress)
    except (StackError, RuntimeError) as error:
        _fail(error)
        return
    out.print(endpoints_table(env))
    console.print(f"endpoints written to {stack.ctx.paths.env_file}")


@app.command()
def down() -> None:
    """Stop every component (SIGTERM, then SIGKILL after the stop timeout)."""
    _stack().down(progress=_progress)


@app.command()
def status() -> None:
    """Show each component's state, pid, ports and readiness."""
    table = Table(title="Local stack")
    for column in ("component", "state", "pid", "ports", "ready"):
        table.add_column(column)
    stack = _stack()
    rows = stack.status()
    for row in rows:
        ports = ", ".join(f"{role}={port}" for role, port in row.ports.items())
        table.add_row(row.name, row.state, str(row.pid or "-"), ports, "yes" if row.ready else "no")
    out.print(table)
    if any(row.name == "flink_jobmanager" and row.ready for row in rows):
        out.print(_flink_jobs_table(flink_rest_url(stack.ctx)))


def _flink_jobs_table(url: str) -> Table:
    from deploy import flink_jobs

    table = Table(title="Flink jobs")
    table.add_column("job id", no_wrap=True, min_width=32)  # whole: it is what cancel and savepoint take
    for column in ("name", "state", "last checkpoint"):
        table.add_column(column, overflow="fold")
    for job in flink_jobs.summaries(url):
        age = "-" if job.checkpoint_age_s is None else f"{job.checkpoint_age_s:.0f} s ago"
        table.add_row(job.job_id, job.name, job.state, age)
    return table


@app.command()
def logs(
    component: str,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
) -> None:
    """Print the end of a component's log (logs/<component>.log)."""
    stack = _stack()
    try:
        stack.component(component)
    except StackError as error:
        _fail(error)
    path = stack.ctx.paths.log(component)
    if not path.exists():
        _fail(StackError(f"no log yet at {path}"))
    command = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.call(command))


def register_schemas(
    url: Annotated[
        str | None, typer.Option(help="Schema Registry URL (default: SCHEMA_REGISTRY_URL settings).")
    ] = None,
    subject_prefix: Annotated[str, typer.Option(help="Prefix for every subject (tests, staging).")] = "",
    topic: Annotated[list[str] | None, typer.Option(help="Register only these topics (repeatable).")] = None,
) -> None:
    """Register every catalogue subject and set its compatibility level (idempotent)."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from schemas.catalogue import load_catalogue
    from services.common.settings import SchemaRegistrySettings
    from services.schema_registry.contracts import register_catalogue

    settings = SchemaRegistrySettings() if url is None else SchemaRegistrySettings(url=url)
    catalogue = load_catalogue()
    selected = [catalogue.topic(name) for name in topic] if topic else None
    try:
        results = register_catalogue(settings, subject_prefix=subject_prefix, topics=selected)
    except SchemaRegistryError as error:
        typer.echo(f"registration failed: {error}", err=True)
        raise typer.Exit(code=1) from error
    for item in results:
        typer.echo(f"{item.subject} -> id {item.schema_id}, version {item.version} ({item.compatibility})")


flink_app = typer.Typer(no_args_is_help=True, help="Run the PyFlink jobs (stream_processors/) on the Flink cluster.")
app.add_typer(flink_app, name="flink")
RestUrl = Annotated[str | None, typer.Option(help="Flink REST API (default: FLINK_REST_URL settings).")]


def _rest_url(url: str | None) -> str:
    from services.common.settings import FlinkSettings

    return url or FlinkSettings().rest_url


@flink_app.command("submit")
def flink_submit(
    jobs: Annotated[
        list[str], typer.Argument(help="Job name (product_views, ...); several: run together as one Flink job.")
    ],
    setting: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE added to the job's environment (repeatable).")
    ] = None,
    from_savepoint: Annotated[str | None, typer.Option(help="Resume from this savepoint or checkpoint.")] = None,
    rest_url: RestUrl = None,
) -> None:
    """Submit a job, or several as one Flink job (detached), with Flink's CLI; prints its job id."""
    from deploy import flink_jobs

    extra = dict(item.split("=", 1) for item in setting or [])
    try:
        job_id = flink_jobs.submit(_stack().ctx, jobs, _rest_url(rest_url), extra, from_savepoint=from_savepoint)
    except (flink_jobs.FlinkError, RuntimeError) as error:
        _fail(error)
        return
    typer.echo(job_id)


@flink_app.command("list")
def flink_list(rest_url: RestUrl = None) -> None:
    """Every job on the cluster: id, name, state, age of its last completed checkpoint."""
    out.print(_flink_jobs_table(_rest_url(rest_url)))


@flink_app.command("cancel")
def flink_cancel(job_id: str, rest_url: RestUrl = None) -> None:
    """Cancel a job (its last retained checkpoint stays for a restart)."""
    from deploy import flink_jobs

    try:
        flink_jobs.cancel(_rest_url(rest_url), job_id)
    except flink_jobs.FlinkError as error:
        _fail(error)


@flink_app.command("savepoint")
def flink_savepoint(
    job_id: str,
    stop: Annotated[bool, typer.Option(help="Stop the job with the savepoint (upgrade path).")] = False,
    rest_url: RestUrl = None,
) -> None:
    """Take a savepoint of a job (``--stop``: and stop it); prints the savepoint's location."""
    from deploy import flink_jobs

    try:
        typer.echo(flink_jobs.savepoint(_rest_url(rest_url), job_id, stop=stop))
    except flink_jobs.FlinkError as error:
        _fail(error)


_mounted: list[bool] = []


def build() -> typer.Typer:
    """The whole ``freightline`` command: the stack commands plus ``run``, ``spark``, ``dbt``, ``dlq`` and ``schemas``
    (mounted once)."""
    if _mounted:
        return app
    _mounted.append(True)
    from deploy.chaos import chaos_command
    from deploy.dbt import PASS_THROUGH, dbt
    from deploy.dlq import dlq_app
    from deploy.pipeline import run as run_pipeline
    from deploy.reconcile import reconcile_command
    from deploy.spark import spark_app

    app.command(name="run")(run_pipeline)
    app.command(name="reconcile")(reconcile_command)
    app.command(name="chaos")(chaos_command)
    app.add_typer(spark_app, name="spark")
    app.command(name="dbt", context_settings=PASS_THROUGH, help="Run dbt (dbt/) against the stack's PostgreSQL.")(dbt)
    app.add_typer(dlq_app, name="dlq")
    try:
        from schemas.governance.cli import app as schemas_app
    except ImportError:  # the governance package is optional for a minimal checkout
        return app
    schemas_app.command(name="register")(register_schemas)
    app.add_typer(schemas_app, name="schemas", help="Check, document and register the Avro contracts.")
    return app


def main() -> None:
    try:
        build()()
    except KeyboardInterrupt:
        sys.exit(130)
