"""Loading and expanding the Avro schema files.

Every named type lives in its own file, ``avro/<namespace as folders>/<Name>.avsc``. A schema refers to
types of other files by full name; :func:`expand` lets ``fastavro.schema.load_schema`` resolve those
references through a :class:`SchemaSource` and returns the fully expanded, self-contained schema: each named
type is defined once, at its first use, and referred to by full name afterwards. That expanded form is what
is registered for a topic (no registry references).

A source is either the working tree (:class:`DirectorySource`) or any mapping of full names to parsed
JSON (:class:`MappingSource`), which the governance check uses to rebuild released versions from git.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from fastavro.repository.base import AbstractSchemaRepository, SchemaRepositoryError
from fastavro.schema import load_schema as _fastavro_load_schema

AVRO_SUFFIX = ".avsc"

# Deterministic key order of the canonical JSON form: readable (type and name first, docs before the
# body) and stable across runs, so equal schemas always produce equal text.
_SCHEMA_KEY_ORDER = (
    "type",
    "name",
    "namespace",
    "doc",
    "aliases",
    "fields",
    "symbols",
    "default",
    "items",
    "values",
    "size",
    "logicalType",
    "precision",
    "scale",
)
_FIELD_KEY_ORDER = ("name", "type", "doc", "default", "order", "aliases")


class SchemaNotFoundError(LookupError):
    """A named type was asked for (or referenced) that no schema file defines."""


class SchemaSource(Protocol):
    """Where schema files come from: the working tree, or one committed version of it."""

    def read(self, full_name: str) -> dict[str, Any] | None:
        """The parsed JSON of the file defining ``full_name``, or None when there is none."""

    def names(self) -> list[str]:
        """Full names of every type defined by a file of this source, sorted."""


def relative_path(full_name: str) -> Path:
    """Path of the file defining ``full_name``, relative to the schema root."""
    *namespace, name = full_name.split(".")
    if not name or not all(namespace):
        raise ValueError(f"not a full Avro name: {full_name!r}")
    return Path(*namespace, name + AVRO_SUFFIX)


def full_name_of(relative: Path) -> str:
    """Inverse of :func:`relative_path`."""
    return ".".join((*relative.parent.parts, relative.name.removesuffix(AVRO_SUFFIX)))


class DirectorySource:
    """Schema files under a root folder, one named type per file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, full_name: str) -> dict[str, Any] | None:
        path = self.root / relative_path(full_name)
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a schema file must hold one JSON object")
        return data

    def names(self) -> list[str]:
        return sorted(full_name_of(p.relative_to(self.root)) for p in self.root.rglob("*" + AVRO_SUFFIX))


class MappingSource:
    """Schema files given as a mapping of full name to parsed JSON."""

    def __init__(self, schemas: Mapping[str, dict[str, Any]]) -> None:
        self._schemas = dict(schemas)

    def read(self, full_name: str) -> dict[str, Any] | None:
        return self._schemas.get(full_name)

    def names(self) -> list[str]:
        return sorted(self._schemas)


class _SourceRepository(AbstractSchemaRepository):  # type: ignore[misc]
    """Adapts a :class:`SchemaSource` to fastavro's repository interface."""

    def __init__(self, source: SchemaSource) -> None:
        self._source = source

    def load(self, name: str) -> dict[str, Any]:
        data = self._source.read(name)
        if data is None:
            raise SchemaRepositoryError(f"no schema file defines {name!r}")
        # fastavro mutates what it loads while injecting references: hand it a private copy.
        copied: dict[str, Any] = json.loads(json.dumps(data))
        return copied


def expand(full_name: str, source: SchemaSource) -> dict[str, Any]:
    """The fully expanded, self-contained schema of ``full_name`` in canonical key order."""
    if source.read(full_name) is None:
        raise SchemaNotFoundError(f"no schema file defines {full_name!r}")
    try:
        parsed = _fastavro_load_schema(full_name, repo=_SourceRepository(source), _write_hint=False)
    except SchemaRepositoryError as error:
        raise SchemaNotFoundError(str(error)) from error
    except Exception as error:  # fastavro raises UnknownType, SchemaParseException, ValueError...
        missing = getattr(error, "name", None)
        if missing is not None and source.read(str(missing)) is None:
            raise SchemaNotFoundError(f"{full_name}: refers to {missing!r}, which no file defines") from error
        raise
    if not isinstance(parsed, dict):
        raise ValueError(f"{full_name}: a schema file must define a named type")
    normalised = canonical_order(parsed)
    assert isinstance(normalised, dict)
    return normalised


def canonical_order(schema: Any) -> Any:
    """A copy of ``schema`` with keys in the canonical order and fastavro's private keys removed."""
    if isinstance(schema, list):
        return [canonical_order(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    result = _ordered(schema, _SCHEMA_KEY_ORDER)
    for key in ("items", "values"):
        if key in result:
            result[key] = canonical_order(result[key])
    if isinstance(result.get("type"), dict | list):
        result["type"] = canonical_order(result["type"])
    if "fields" in result:
        fields = []
        for field in result["fields"]:
            ordered = _ordered(field, _FIELD_KEY_ORDER)
            ordered["type"] = canonical_order(ordered["type"])
            fields.append(ordered)
        result["fields"] = fields
    return result


def _ordered(node: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    keys = [k for k in order if k in node]
    keys += sorted(k for k in node if k not in order and not k.startswith("__"))
    return {key: node[key] for key in keys}


def to_text(schema: dict[str, Any]) -> str:
    """Compact, deterministic JSON text of an expanded schema (what is registered)."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


# Avro's primitive type names: a string type that is none of them names a named type
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def iter_named_types(schema: Any) -> Iterator[dict[str, Any]]:
    """Every named type definition (record, enum, fixed) inside an expanded schema, in document order."""
    if isinstance(schema, list):
        for branch in schema:
            yield from iter_named_types(branch)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        yield schema
    if kind in ("record", "error"):
        for field in schema.get("fields", []):
            yield from iter_named_types(field.get("type"))
    elif kind == "array":
        yield from iter_named_types(schema.get("items"))
    elif kind == "map":
        yield from iter_named_types(schema.get("values"))
    elif isinstance(kind, dict | list):
        yield from iter_named_types(kind)
