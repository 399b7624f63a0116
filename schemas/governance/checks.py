"""The offline checks behind ``python -m schemas.governance check``.

1. The catalogue parses, names only existing schemas, keys on an existing top-level field, follows the
   naming rules and gives every topic a dead-letter topic.
2. Every schema file defines exactly one named type whose full name matches its path, and carries a
   ``doc`` on every named type and every field.
3. Every value schema has an example; every example converts, validates and round-trips through
   fastavro's binary encoding.
4. Every subject's working-tree schema is compatible with every released version in git history at the
   subject's compatibility level (see :mod:`schemas.governance.history`).
5. The generated field reference in ``docs/`` is up to date.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import yaml
from fastavro.validation import ValidationError, validate

from schemas.catalogue import Catalogue, CatalogueError, load_catalogue
from schemas.compatibility import CompatibilityLevel, SchemaParseError, check_compatibility
from schemas.conversion import ExampleError, from_json
from schemas.governance import docs
from schemas.governance.history import History, ReleasedVersion, load_history
from schemas.loader import DirectorySource, expand, iter_named_types, to_text

TOPIC_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[0-9]+$")
UPSTREAM_TOPICS = frozenset({"product_views"})
DEAD_LETTER_SCHEMA = "com.freightline.common.DeadLetter"
_NAMED = ("record", "error", "enum", "fixed")


@dataclass(frozen=True)
class Problem:
    """One reason the check fails."""

    kind: str
    where: str
    message: str

    def render(self) -> str:
        indented = self.message.replace("\n", "\n    ")
        return f"[{self.kind}] {self.where}: {indented}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subjects: int = 0
    schema_files: int = 0
    examples: int = 0
    comparisons: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, where: str, message: str) -> None:
        self.problems.append(Problem(kind, where, message))


@dataclass(frozen=True)
class SchemaTree:
    """The schemas folder being checked: ``avro/``, ``catalogue.yaml``, ``examples/``, ``docs/``."""

    root: Path

    @property
    def avro(self) -> Path:
        return self.root / "avro"

    @property
    def catalogue(self) -> Path:
        return self.root / "catalogue.yaml"

    @property
    def examples(self) -> Path:
        return self.root / "examples"

    @property
    def docs(self) -> Path:
        return self.root / "docs"


def run_checks(root: Path, *, history: bool = True, check_docs: bool = True) -> Report:
    tree = SchemaTree(root)
    report = Report()
    source = DirectorySource(tree.avro)
    names = source.names()
    report.schema_files = len(names)
    _check_files(source, names, report)
    try:
        catalogue = load_catalogue(tree.catalogue)
    except (OSError, CatalogueError, yaml.YAMLError) as error:
        report.add("catalogue", str(tree.catalogue), str(error))
        return report
    report.subjects = len(catalogue.topics)
    expanded = _check_catalogue(catalogue, source, names, report)
    _check_examples(tree, catalogue, source, names, expanded, report)
    if history:
        _check_history(tree, catalogue, expanded, report)
    if check_docs:
        stale = docs.outdated(tree.docs, docs.render(source, catalogue))
        if stale:
            report.add(
                "docs",
                str(tree.docs),
                f"out of date: {', '.join(stale)}; run `python -m schemas.governance docs`",
            )
    return report


# ------------------------------------------------------------------------------------------ schema files


def _walk_named(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(json path, node) of every named type defined inline in ``schema``."""
    if isinstance(schema, list):
        for index, branch in enumerate(schema):
            yield from _walk_named(branch, f"{path}[{index}]")
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED:
            yield path, schema
        if kind in ("record", "error"):
            for index, item in enumerate(schema.get("fields", [])):
                yield from _walk_named(item.get("type"), f"{path}.fields[{index}]")
        elif kind == "array":
            yield from _walk_named(schema.get("items"), f"{path}.items")
        elif kind == "map":
            yield from _walk_named(schema.get("values"), f"{path}.values")
        elif isinstance(kind, dict | list):
            yield from _walk_named(kind, path)


def _check_files(source: DirectorySource, names: list[str], report: Report) -> None:
    for full_name in names:
        where = f"avro/{full_name.replace('.', '/')}.avsc"
        try:
            schema = source.read(full_name)
        except (OSError, ValueError) as error:
            report.add("schema", where, f"unreadable: {error}")
            continue
        if schema is None:
            continue
        defined = list(_walk_named(schema, "$"))
        if not defined or defined[0][0] != "$":
            report.add("schema", where, "a schema file must define one named type (record, enum or fixed)")
            continue
        namespace, _, short = full_name.rpartition(".")
        if schema.get("name") != short or schema.get("namespace") != namespace:
            report.add("schema", where, f"defines {schema.get('namespace')}.{schema.get('name')}; expected {full_name}")
        for path, node in defined[1:]:
            report.add(
                "schema", where, f"{path} defines {node.get('name')!r} inline: give each named type its own file"
            )
        for path, node in defined:
            if not str(node.get("doc", "")).strip():
                report.add("doc", where, f"{path} ({node.get('name')}) has no doc")
            if node.get("type") in ("record", "error"):
                for item in node.get("fields", []):
                    if not str(item.get("doc", "")).strip():
                        report.add("doc", where, f"field {node.get('name')}.{item.get('name')} has no doc")
        try:
            fastavro.parse_schema(expand(full_name, source))
        except Exception as error:  # fastavro's parse errors have no common base class
            report.add("schema", where, f"does not parse: {error}")


# -------------------------------------------------------------------------------------------- catalogue


def _check_catalogue(catalogue: Catalogue, source: DirectorySource, names: list[str], report: Report) -> dict[str, str]:
    """Checks the catalogue; returns the expanded text of every value schema that exists."""
    expanded: dict[str, str] = {}
    topic_names = {spec.name for spec in catalogue.topics}
    for spec in catalogue.topics:
        where = f"catalogue: {spec.name}"
        if spec.is_dead_letter:
            origin = spec.name.removesuffix(".dlq")
            if origin not in topic_names:
                report.add("catalogue", where, f"dead letters of {origin!r}, which is not in the catalogue")
            if spec.value_schema != DEAD_LETTER_SCHEMA:
                report.add("catalogue", where, f"a dead-letter topic's value must be {DEAD_LETTER_SCHEMA}")
            if spec.cluster != "local":
                report.add("catalogue", where, "dead-letter topics live on the local cluster")
        else:
            if spec.name not in UPSTREAM_TOPICS and not TOPIC_NAME.match(spec.name):
                report.add("catalogue", where, "topic names follow <domain>.<event>.v<major>")
            if f"{spec.name}.dlq" not in topic_names:
                report.add("catalogue", where, f"no dead-letter topic {spec.name}.dlq")
        if spec.value_schema not in names:
            report.add("catalogue", where, f"value schema {spec.value_schema} does not exist (no .avsc file)")
            continue
        if spec.value_schema not in expanded:
            try:
                expanded[spec.value_schema] = to_text(expand(spec.value_schema, source))
            except Exception as error:  # reported, the check carries on with the other subjects
                report.add("schema", spec.value_schema, f"does not expand: {error}")
                continue
        if not _has_field(json.loads(expanded[spec.value_schema]), spec.key_field):
            report.add("catalogue", where, f"key field {spec.key_field!r} is not a field of {spec.value_schema}")
    return expanded


def _has_field(schema: dict[str, Any], dotted: str) -> bool:
    """Whether ``dotted`` (e.g. ``event.order_id``) names a field, through nested records."""
    named = {node["name"]: node for node in iter_named_types(schema)}
    node: Any = schema
    for part in dotted.split("."):
        if isinstance(node, str):
            node = named.get(node)
        if not isinstance(node, dict) or node.get("type") not in ("record", "error"):
            return False
        match = [item for item in node.get("fields", []) if item.get("name") == part]
        if not match:
            return False
        node = match[0]["type"]
    return True


# --------------------------------------------------------------------------------------------- examples


def _check_examples(
    tree: SchemaTree,
    catalogue: Catalogue,
    source: DirectorySource,
    names: list[str],
    expanded: dict[str, str],
    report: Report,
) -> None:
    present = {path.name.removesuffix(".json"): path for path in tree.examples.glob("*.json")}
    for value_schema in sorted({spec.value_schema for spec in catalogue.topics}):
        if value_schema in names and value_schema not in present:
            report.add("example", value_schema, f"no example: add examples/{value_schema}.json")
    for full_name, path in sorted(present.items()):
        where = f"examples/{path.name}"
        if full_name not in names:
            report.add("example", where, f"there is no schema {full_name}")
            continue
        try:
            schema = json.loads(expanded[full_name]) if full_name in expanded else expand(full_name, source)
            error = example_error(schema, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as problem:
            error = str(problem)
        if error:
            report.add("example", where, error)
        else:
            report.examples += 1


def example_error(schema: dict[str, Any], document: Any) -> str | None:
    """Why the example does not fit the schema (conversion, validation, binary round trip), or None."""
    try:
        record = from_json(schema, document)
    except ExampleError as error:
        return str(error)
    parsed = fastavro.parse_schema(schema)
    try:
        validate(record, parsed, raise_errors=True)
    except ValidationError as error:
        return f"does not validate: {error}"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, parsed, None, return_record_name=True, return_record_name_override=True)
    if back != record:
        return "changes when written and read back through Avro's binary encoding"
    return None


# ---------------------------------------------------------------------------------------- compatibility

_BASE_LEVEL = {
    CompatibilityLevel.BACKWARD_TRANSITIVE: CompatibilityLevel.BACKWARD,
    CompatibilityLevel.FORWARD_TRANSITIVE: CompatibilityLevel.FORWARD,
    CompatibilityLevel.FULL_TRANSITIVE: CompatibilityLevel.FULL,
}


def _check_history(tree: SchemaTree, catalogue: Catalogue, expanded: dict[str, str], report: Report) -> None:
    history: History = load_history(tree.root)
    if history.reason_empty:
        report.notes.append(f"no released versions to compare with: {history.reason_empty}")
    report.notes.extend(history.warnings)
    cache: dict[tuple[str, str, str], list[str]] = {}
    for spec in catalogue.topics:
        new_text = expanded.get(spec.value_schema)
        released = history.of(spec.subject)
        if new_text is None or not released:
            continue
        level = CompatibilityLevel.parse(spec.compatibility)
        if level is CompatibilityLevel.NONE:
            continue
        # Check one released version at a time so each message names the version and commit it concerns.
        base = _BASE_LEVEL.get(level, level)
        targets: list[ReleasedVersion] = released if level.transitive else released[-1:]
        for version in reversed(targets):
            if version.text == new_text:
                continue
            key = (new_text, version.text, base.value)
            if key not in cache:
                try:
                    cache[key] = check_compatibility(new_text, [version.text], base)
                except SchemaParseError as error:
                    cache[key] = [f"cannot be compared: {error}"]
                report.comparisons += 1
            messages = cache[key]
            if messages:
                commit = version.commit
                report.add(
                    "compatibility",
                    spec.subject,
                    f"incompatible at {level.value} with released version {version.number} "
                    f"({version.value_schema}, commit {commit.short} {commit.date[:10]} {commit.subject!r}):\n"
                    + "\n".join(f"- {message}" for message in messages),
                )
