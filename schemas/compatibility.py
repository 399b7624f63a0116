"""Avro schema compatibility levels and checks, with Confluent Schema Registry semantics.

The reader/writer resolution rules come from the ``avro`` package
(:class:`avro.compatibility.ReaderWriterCompatibilityChecker`, a port of Java Avro's ``SchemaCompatibility``
that Confluent's registry uses). This module adds what the registry needs on top:

* the seven compatibility levels and which direction(s) and which previous versions each one checks;
* Confluent's order of evaluation (latest previous schema first, stop at the first incompatible one);
* Confluent's verbose messages, e.g.
  ``{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a field in the new
  schema does not match with the old schema', additionalInfo:'reader type: INT not compatible with writer
  type: LONG'}``;
* parsing with named types from schema references, and Java Avro's qualification of relative aliases.

BACKWARD: the new schema (reader) reads data written with an old schema (writer).
FORWARD: an old schema (reader) reads data written with the new schema (writer). FULL: both.
"""

from __future__ import annotations

import ast
import contextvars
import enum
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import avro.compatibility as _avro_compat
import avro.name
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

__all__ = [
    "CompatibilityLevel",
    "CompatibilityReport",
    "Incompatibility",
    "SchemaParseError",
    "check_compatibility",
    "check_parsed_compatibility",
    "parse_schema",
]


class CompatibilityLevel(enum.StrEnum):
    """Confluent's compatibility levels."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @classmethod
    def parse(cls, value: CompatibilityLevel | str) -> CompatibilityLevel:
        """Return the level named by ``value`` (case-insensitive); ``ValueError`` when unknown."""
        if isinstance(value, CompatibilityLevel):
            return value
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise ValueError(f"Invalid compatibility level: {value!r}") from None

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def checks_backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def checks_forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


class SchemaParseError(ValueError):
    """The text is not a valid Avro schema (or a reference it needs is invalid)."""


_DESCRIPTIONS: dict[SchemaIncompatibilityType, str] = {
    SchemaIncompatibilityType.name_mismatch: "The name of the schema has changed (path '{location}')",
    SchemaIncompatibilityType.fixed_size_mismatch: (
        "The size of FIXED type field at path '{location}' in the new schema does not match with the old schema"
    ),
    SchemaIncompatibilityType.missing_enum_symbols: (
        "The new schema is missing enum symbols '{info}' at path '{location}' in the old schema"
    ),
    SchemaIncompatibilityType.reader_field_missing_default_value: (
        "The field '{info}' at path '{location}' in the new schema has no default value and is missing in "
        "the old schema"
    ),
    SchemaIncompatibilityType.type_mismatch: (
        "The type (path '{location}') of a field in the new schema does not match with the old schema"
    ),
    SchemaIncompatibilityType.missing_union_branch: (
        "The new schema is missing a type inside a union field at path '{location}' in the old schema"
    ),
}

_TYPE_MISMATCH_RE = re.compile(r"^reader type: (\w+) not compatible with writer type: (\w+)$")
_UNION_RE = re.compile(r"^reader union lacking writer type:? ?(\w+)$")


@dataclass(frozen=True)
class Incompatibility:
    """One reason why a reader schema cannot read what a writer schema wrote."""

    error_type: str
    location: str
    additional_info: str

    @property
    def description(self) -> str:
        template = _DESCRIPTIONS.get(SchemaIncompatibilityType(self.error_type.lower()), "{info}")
        return template.format(location=self.location, info=self.additional_info)

    def __str__(self) -> str:
        return (
            f"{{errorType:'{self.error_type}', description:'{self.description}', "
            f"additionalInfo:'{self.additional_info}'}}"
        )


@dataclass(frozen=True)
class CompatibilityReport:
    """Outcome of checking a new schema against previously registered ones.

    ``existing_index`` is the index (into the sequence that was checked) of the previous schema the new one is
    incompatible with, or ``None`` when compatible.
    """

    incompatibilities: tuple[Incompatibility, ...] = ()
    existing_index: int | None = None

    @property
    def is_compatible(self) -> bool:
        return self.existing_index is None

    @property
    def messages(self) -> list[str]:
        return [str(item) for item in self.incompatibilities]


# ----------------------------------------------------------------------------------------------------
# Parsing


def _qualify_aliases(node: Any, namespace: str | None) -> Any:
    """Return a copy of a schema JSON tree where relative aliases of named types are fully qualified.

    Java Avro resolves a named type's aliases against the type's namespace, the ``avro`` package compares the
    raw alias with the writer's full name; qualifying them first gives Java's (and Confluent's) behaviour.
    """
    if isinstance(node, list):
        return [_qualify_aliases(item, namespace) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    result = dict(node)
    if kind in ("record", "error", "enum", "fixed") and isinstance(node.get("name"), str):
        name: str = node["name"]
        if "." in name:
            own_namespace: str | None = name.rsplit(".", 1)[0]
        else:
            declared = node.get("namespace")
            own_namespace = declared if isinstance(declared, str) else namespace
        aliases = node.get("aliases")
        if isinstance(aliases, list):
            result["aliases"] = [
                f"{own_namespace}.{alias}" if isinstance(alias, str) and "." not in alias and own_namespace else alias
                for alias in aliases
            ]
        namespace = own_namespace or None
        if isinstance(node.get("fields"), list):
            result["fields"] = [
                {**field, "type": _qualify_aliases(field.get("type"), namespace)} if isinstance(field, dict) else field
                for field in node["fields"]
            ]
        return result
    if kind == "array" and "items" in node:
        result["items"] = _qualify_aliases(node["items"], namespace)
    elif kind == "map" and "values" in node:
        result["values"] = _qualify_aliases(node["values"], namespace)
    elif isinstance(kind, dict | list):
        result["type"] = _qualify_aliases(kind, namespace)
    return result


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SchemaParseError(f"Invalid schema JSON: {exc}") from None


def parse_schema(text: str, references: Sequence[str] = ()) -> avro.schema.Schema:
    """Parse an Avro schema text.

    ``references`` are the texts of the schemas the main one refers to by name, dependencies first (as a
    registry resolves ``references``); their named types become visible to the main schema.
    Raises :class:`SchemaParseError` when any text is not a valid Avro schema.
    """
    names = avro.name.Names(validate_names=True)
    try:
        for ref_text in references:
            ref_json = _qualify_aliases(_load_json(ref_text), None)
            # A referenced schema may itself be a full name reference already parsed: skip known names.
            if isinstance(ref_json, str) and names.has_name(ref_json, None):
                continue
            avro.schema.make_avsc_object(ref_json, names)
        return avro.schema.make_avsc_object(_qualify_aliases(_load_json(text), None), names)
    except SchemaParseError:
        raise
    except Exception as exc:  # the avro package raises many exception types for malformed input
        raise SchemaParseError(f"Invalid schema: {exc}") from None


# ----------------------------------------------------------------------------------------------------
# Checking

_recorder: contextvars.ContextVar[list[tuple[SchemaIncompatibilityType, str, str]] | None] = contextvars.ContextVar(
    "freightline_avro_incompatibilities", default=None
)
_install_lock = threading.Lock()
_installed = False


def _install_recorder() -> None:
    """Record each incompatibility the avro checker creates, with its own message and location.

    The checker merges messages and locations into unordered sets, losing which message belongs to which
    location; recording them where they are created keeps the pairs Confluent reports.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        original: Callable[..., SchemaCompatibilityResult] = _avro_compat.incompatible

        def recording_incompatible(
            incompat_type: SchemaIncompatibilityType, message: str, location: list[str]
        ) -> SchemaCompatibilityResult:
            result = original(incompat_type, message, location)
            sink = _recorder.get()
            if sink is not None:
                sink.append((incompat_type, message, next(iter(result.locations))))
            return result

        _avro_compat.incompatible = recording_incompatible  # type: ignore[assignment]
        _installed = True


def _additional_info(kind: SchemaIncompatibilityType, message: str) -> str:
    if kind is SchemaIncompatibilityType.type_mismatch:
        match = _TYPE_MISMATCH_RE.match(message)
        if match:
            reader, writer = match.group(1).upper(), match.group(2).upper()
            return f"reader type: {reader} not compatible with writer type: {writer}"
    elif kind is SchemaIncompatibilityType.missing_union_branch:
        match = _UNION_RE.match(message)
        if match:
            return f"reader union lacking writer type: {match.group(1).upper()}"
    elif kind is SchemaIncompatibilityType.missing_enum_symbols:
        try:
            symbols = ast.literal_eval(message)
        except (ValueError, SyntaxError):
            return message
        if isinstance(symbols, set | frozenset | list | tuple):
            return "[" + ", ".join(sorted(str(s) for s in symbols)) + "]"
    return message


def _reader_writer(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[Incompatibility]:
    """Incompatibilities found when ``reader`` reads data written with ``writer`` (empty = compatible)."""
    _install_recorder()
    sink: list[tuple[SchemaIncompatibilityType, str, str]] = []
    token = _recorder.set(sink)
    try:
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    except Exception as exc:  # unknown schema types and the like
        return [Incompatibility("TYPE_MISMATCH", "/", f"cannot compare schemas: {exc}")]
    finally:
        _recorder.reset(token)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    # Keep the recorded pairs that made it into the final result (branches tried inside unions and then
    # dropped are recorded too), in the order they were found, without duplicates.
    kinds = set(result.incompatibilities)
    found: list[Incompatibility] = []
    seen: set[tuple[SchemaIncompatibilityType, str, str]] = set()
    for kind, message, location in sink:
        key = (kind, message, location)
        if key in seen or kind not in kinds or message not in result.messages:
            continue
        if location not in result.locations:
            continue
        seen.add(key)
        found.append(Incompatibility(kind.name.upper(), location, _additional_info(kind, message)))
    if not found:  # should not happen; never report "incompatible" without a reason
        for kind in result.incompatibilities:
            found.append(
                Incompatibility(
                    kind.name.upper(), ",".join(sorted(result.locations)), "; ".join(sorted(result.messages))
                )
            )
    return found


def _pair(new: avro.schema.Schema, old: avro.schema.Schema, level: CompatibilityLevel) -> list[Incompatibility]:
    problems: list[Incompatibility] = []
    if level.checks_backward:
        problems.extend(_reader_writer(new, old))
    if level.checks_forward:
        problems.extend(_reader_writer(old, new))
    return problems


def _candidates(count: int, level: CompatibilityLevel) -> Iterator[int]:
    """Indexes of the previous schemas to check, latest first (Confluent's order)."""
    if level is CompatibilityLevel.NONE or count == 0:
        return iter(())
    if level.transitive:
        return iter(range(count - 1, -1, -1))
    return iter((count - 1,))


def check_parsed_compatibility(
    new_schema: avro.schema.Schema,
    existing: Sequence[avro.schema.Schema],
    level: CompatibilityLevel | str,
) -> CompatibilityReport:
    """Check an already parsed schema against parsed previous schemas (oldest first).

    Previous schemas are checked latest first; the report stops at the first incompatible one, as Confluent's
    registry does.
    """
    resolved = CompatibilityLevel.parse(level)
    for index in _candidates(len(existing), resolved):
        problems = _pair(new_schema, existing[index], resolved)
        if problems:
            return CompatibilityReport(tuple(problems), index)
    return CompatibilityReport()


def check_compatibility(new_schema: str, existing: Sequence[str], level: CompatibilityLevel | str) -> list[str]:
    """Check ``new_schema`` against previously registered schema texts (oldest first) at ``level``.

    Non-transitive levels check only the last (latest) schema. Returns Confluent-style incompatibility
    messages; an empty list means compatible. Raises :class:`SchemaParseError` for invalid schema texts and
    ``ValueError`` for an unknown level.
    """
    resolved = CompatibilityLevel.parse(level)
    new_parsed = parse_schema(new_schema)
    indexes = list(_candidates(len(existing), resolved))
    parsed: dict[int, avro.schema.Schema] = {index: parse_schema(existing[index]) for index in indexes}
    for index in indexes:
        problems = _pair(new_parsed, parsed[index], resolved)
        if problems:
            return [str(item) for item in problems]
    return []
