"""``schemas.governance check`` on a copy of the schemas folder inside a real, temporary git repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.catalogue import PACKAGE_DIR, load_catalogue
from schemas.governance import docs
from schemas.governance.checks import run_checks
from schemas.governance.cli import app
from schemas.governance.history import load_history
from schemas.loader import DirectorySource

PRODUCT_VIEW = Path("avro/com/freightline/web/ProductView.avsc")
STORE = Path("avro/com/freightline/reference/Store.avsc")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=Freightline", "-c", "user.email=ci@freightline.invalid", "commit", "-qm", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds a copy of the packaged schemas folder."""
    root = tmp_path / "repo"
    schemas = root / "schemas"
    for part in ("avro", "examples", "docs"):
        shutil.copytree(PACKAGE_DIR / part, schemas / part)
    shutil.copy(PACKAGE_DIR / "catalogue.yaml", schemas / "catalogue.yaml")
    _git(root, "init", "-q", "-b", "main")
    _commit(root, "Initial contracts")
    return root


def _edit(schemas: Path, relative: Path, change: Any) -> None:
    path = schemas / relative
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2) + "\n")
    # keep the generated reference current, as a contributor would
    docs.write(
        schemas / "docs", docs.render(DirectorySource(schemas / "avro"), load_catalogue(schemas / "catalogue.yaml"))
    )


def _add_field(field: dict[str, Any]) -> Any:
    return lambda schema: schema["fields"].append(field)


def _drop_field(name: str) -> Any:
    def change(schema: dict[str, Any]) -> None:
        schema["fields"] = [item for item in schema["fields"] if item["name"] != name]

    return change


def test_unchanged_tree_passes_against_its_own_history(repo: Path) -> None:
    report = run_checks(repo / "schemas")
    assert report.ok, [problem.render() for problem in report.problems]
    history = load_history(repo / "schemas")
    assert len(history.commits) == 1
    assert len(history.of("commerce.orders.v1-value")) == 1


def test_compatible_change_passes(repo: Path) -> None:
    schemas = repo / "schemas"
    optional = {"name": "user_agent", "type": ["null", "string"], "default": None, "doc": "Browser user agent."}
    _edit(schemas, PRODUCT_VIEW, _add_field(optional))
    report = run_checks(schemas)
    assert report.ok, [problem.render() for problem in report.problems]
    assert report.comparisons > 0


def test_required_field_without_default_fails_backward_transitive(repo: Path) -> None:
    schemas = repo / "schemas"
    _edit(schemas, PRODUCT_VIEW, _add_field({"name": "user_agent", "type": "string", "doc": "Browser user agent."}))
    report = run_checks(schemas)
    problems = [p for p in report.problems if p.kind == "compatibility"]
    subjects = {p.where for p in problems}
    # every subject whose value contains ProductView is affected, on both clusters and in enrichment
    assert {"product_views-value", "web.product_views.v1-value", "enriched.product_views.v1-value"} <= subjects
    text = next(p for p in problems if p.where == "web.product_views.v1-value").render()
    assert "BACKWARD_TRANSITIVE" in text and "released version 1" in text and "Initial contracts" in text
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in text and "user_agent" in text


def test_removing_a_required_field_fails_full_transitive(repo: Path) -> None:
    schemas = repo / "schemas"
    _edit(schemas, STORE, _drop_field("timezone"))
    report = run_checks(schemas)
    problems = [p for p in report.problems if p.kind == "compatibility"]
    assert [p.where for p in problems] == ["reference.stores.v1-value"]
    assert "FULL_TRANSITIVE" in problems[0].message and "timezone" in problems[0].message


def test_transitive_check_names_the_older_incompatible_version(repo: Path) -> None:
    schemas = repo / "schemas"
    _edit(schemas, PRODUCT_VIEW, _add_field({"name": "score", "type": "int", "default": 0, "doc": "A score."}))
    _commit(repo, "Add score")
    _edit(schemas, PRODUCT_VIEW, _drop_field("score"))
    _commit(repo, "Drop score")
    # "Drop score" restores release 1 exactly: like the registry, history keeps it as version 1, not a new one.
    # A string score with a default reads release 1 (no score) but not release 2 (score was an int).
    _edit(schemas, PRODUCT_VIEW, _add_field({"name": "score", "type": "string", "default": "", "doc": "A score."}))
    report = run_checks(schemas)
    problems = [p for p in report.problems if p.where == "web.product_views.v1-value"]
    assert len(problems) == 1
    assert "released version 2" in problems[0].message and "Add score" in problems[0].message
    assert "TYPE_MISMATCH" in problems[0].message
    assert len(load_history(schemas).of("web.product_views.v1-value")) == 2


def test_cli_check_exit_codes_and_readable_output(repo: Path) -> None:
    schemas = repo / "schemas"
    runner = CliRunner()
    passed = runner.invoke(app, ["check", "--schemas-dir", str(schemas)])
    assert passed.exit_code == 0, passed.output
    assert "schemas check passed" in passed.output
    _edit(schemas, STORE, _drop_field("timezone"))
    failed = runner.invoke(app, ["check", "--schemas-dir", str(schemas)])
    assert failed.exit_code == 1
    assert "[compatibility] reference.stores.v1-value: incompatible at FULL_TRANSITIVE" in failed.output
    assert "FAILED" in failed.output


def test_repository_without_commits_has_nothing_to_compare(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(PACKAGE_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__", "governance"))
    _git(tmp_path, "init", "-q")
    report = run_checks(schemas)
    assert report.ok, [problem.render() for problem in report.problems]
    assert report.comparisons == 0
    assert any("no commit" in note for note in report.notes)


def _copy(tmp_path: Path) -> Path:
    schemas = tmp_path / "schemas"
    shutil.copytree(PACKAGE_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__", "governance"))
    return schemas


def test_catalogue_entry_without_schema_fails(tmp_path: Path) -> None:
    schemas = _copy(tmp_path)
    catalogue = schemas / "catalogue.yaml"
    catalogue.write_text(
        catalogue.read_text().replace(
            "value_schema: com.freightline.commerce.Order\n", "value_schema: com.freightline.commerce.Orders\n"
        )
    )
    report = run_checks(schemas, history=False, check_docs=False)
    assert any(
        p.kind == "catalogue" and "com.freightline.commerce.Orders does not exist" in p.message for p in report.problems
    )


def test_missing_doc_fails(tmp_path: Path) -> None:
    schemas = _copy(tmp_path)

    def undocument(schema: dict[str, Any]) -> None:
        del schema["fields"][1]["doc"]

    _edit(schemas, PRODUCT_VIEW, undocument)
    report = run_checks(schemas, history=False)
    assert [p.render() for p in report.problems] == [
        "[doc] avro/com/freightline/web/ProductView.avsc: field ProductView.product_id has no doc"
    ]


def test_invalid_example_fails(tmp_path: Path) -> None:
    schemas = _copy(tmp_path)
    path = schemas / "examples" / "com.freightline.commerce.Order.json"
    document = json.loads(path.read_text())
    document["line_items"][0]["quantity"] = "two"
    path.write_text(json.dumps(document))
    report = run_checks(schemas, history=False, check_docs=False)
    assert [(p.kind, p.message) for p in report.problems] == [
        ("example", "$.line_items[0].quantity: expected an integer")
    ]


def test_stale_docs_fail_and_docs_command_fixes_them(tmp_path: Path) -> None:
    schemas = _copy(tmp_path)
    (schemas / "docs" / "com.freightline.web.md").write_text("outdated\n")
    report = run_checks(schemas, history=False)
    assert [p.kind for p in report.problems] == ["docs"]
    runner = CliRunner()
    assert runner.invoke(app, ["docs", "--schemas-dir", str(schemas), "--check"]).exit_code == 1
    assert runner.invoke(app, ["docs", "--schemas-dir", str(schemas)]).exit_code == 0
    assert run_checks(schemas, history=False).ok


def test_packaged_docs_are_up_to_date() -> None:
    rendered = docs.render(DirectorySource(PACKAGE_DIR / "avro"), load_catalogue())
    assert docs.outdated(PACKAGE_DIR / "docs", rendered) == []
