"""``python -m schemas.governance`` (mounted as ``freightline schemas``): the offline checks and docs.

Registering the contracts needs a registry's settings, so ``freightline schemas register`` lives with the CLI
(``deploy/cli.py``); everything here works on the files alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.catalogue import PACKAGE_DIR, load_catalogue
from schemas.governance import docs as docs_module
from schemas.governance.checks import run_checks
from schemas.loader import DirectorySource

app = typer.Typer(help="Govern the Avro contracts: check them, document them.", no_args_is_help=True)

SchemasDir = Annotated[
    Path,
    typer.Option("--schemas-dir", help="The schemas folder (avro/, catalogue.yaml, examples/, docs/)."),
]


@app.command()
def check(
    schemas_dir: SchemasDir = PACKAGE_DIR,
    history: Annotated[bool, typer.Option(help="Compare with the versions released in git history.")] = True,
) -> None:
    """Offline contract check; exit code 1 on any problem.

    Catalogue consistency, docs on every record and field, examples that validate and round-trip, the
    generated reference being up to date, and compatibility of every subject with each released version.
    """
    report = run_checks(schemas_dir, history=history)
    for note in report.notes:
        typer.echo(f"note: {note}")
    for problem in report.problems:
        typer.echo(problem.render())
    summary = (
        f"{report.subjects} subjects, {report.schema_files} schema files, {report.examples} examples, "
        f"{report.comparisons} comparisons with released versions"
    )
    if report.ok:
        typer.echo(f"schemas check passed: {summary}")
        return
    typer.echo(f"schemas check FAILED with {len(report.problems)} problem(s): {summary}")
    raise typer.Exit(code=1)


@app.command()
def docs(
    schemas_dir: SchemasDir = PACKAGE_DIR,
    check_only: Annotated[bool, typer.Option("--check", help="Only report whether docs are current.")] = False,
) -> None:
    """Write the field reference (docs/*.md) from the schemas' docs."""
    source = DirectorySource(schemas_dir / "avro")
    rendered = docs_module.render(source, load_catalogue(schemas_dir / "catalogue.yaml"))
    if check_only:
        stale = docs_module.outdated(schemas_dir / "docs", rendered)
        if stale:
            typer.echo(f"out of date: {', '.join(stale)}")
            raise typer.Exit(code=1)
        typer.echo("docs are up to date")
        return
    changed = docs_module.write(schemas_dir / "docs", rendered)
    typer.echo(f"wrote {', '.join(changed)}" if changed else "docs already up to date")
