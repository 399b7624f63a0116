"""Schema texts: validation and the canonical form that identifies a schema.

Two submissions that differ only in whitespace or in the order of the standard Avro attributes get the same
canonical text, hence the same id (Confluent stores and compares the canonical form too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import avro.schema
import orjson

from schemas.compatibility import SchemaParseError, parse_schema

AVRO = "AVRO"
SUPPORTED_TYPES = (AVRO,)

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# Java Avro's attribute order when it prints a schema; other attributes keep their order, after these.
_SCHEMA_ORDER = ("type", "name", "namespace", "doc", "fields", "symbols", "items", "values", "size", "default")
_FIELD_ORDER = ("name", "type", "doc", "default", "order")
_LAST = ("aliases",)


@dataclass(frozen=True)
class Reference:
    name: str
    subject: str
    version: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class SchemaText:
    """A validated schema in canonical form, with its references."""

    schema_type: str
    text: str
    references: tuple[Reference, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        """Identity of the schema across the registry (type, canonical text and references)."""
        payload = orjson.dumps({"t": self.schema_type, "s": self.text, "r": [r.as_json() for r in self.references]})
        return hashlib.sha256(payload).hexdigest()

    def references_json(self) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.references]


def _ordered(node: dict[str, Any], first: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in first:
        if key in node:
            out[key] = node[key]
    for key, value in node.items():
        if key not in out and key not in _LAST:
            out[key] = value
    for key in _LAST:
        if key in node:
            out[key] = node[key]
    return out


def _canonical(node: Any, *, is_field: bool = False, sort_props: bool = False) -> Any:
    if isinstance(node, list):
        return [_canonical(item, sort_props=sort_props) for item in node]
    if not isinstance(node, dict):
        return node
    if is_field:
        result = {k: (_canonical(v, sort_props=sort_props) if k == "type" else v) for k, v in node.items()}
        return _ordered(_sorted_props(result, _FIELD_ORDER) if sort_props else result, _FIELD_ORDER)
    if set(node) == {"type"} and node["type"] in _PRIMITIVES:
        return node["type"]
    result = {}
    for key, value in node.items():
        if key == "fields" and isinstance(value, list):
            result[key] = [_canonical(f, is_field=True, sort_props=sort_props) for f in value]
        elif key in ("type", "items", "values"):
            result[key] = _canonical(value, sort_props=sort_props)
        else:
            result[key] = value
    return _ordered(_sorted_props(result, _SCHEMA_ORDER) if sort_props else result, _SCHEMA_ORDER)


def _sorted_props(node: dict[str, Any], known: Sequence[str]) -> dict[str, Any]:
    head = {k: v for k, v in node.items() if k in known or k in _LAST}
    tail = {k: node[k] for k in sorted(k for k in node if k not in head)}
    return {**head, **tail}


def canonical_avro(text: str, *, normalize: bool = False) -> str:
    """Compact JSON with Java Avro's attribute order; ``normalize`` also sorts custom attributes."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SchemaParseError(f"Invalid schema JSON: {exc}") from None
    try:
        return orjson.dumps(_canonical(document, sort_props=normalize)).decode()
    except (TypeError, RecursionError):  # orjson refuses documents nested deeper than it supports
        raise SchemaParseError("Invalid schema: nested too deeply") from None


def parse_avro(text: str, reference_texts: Sequence[str] = ()) -> avro.schema.Schema:
    """Parse an Avro text with its resolved references (dependencies first)."""
    return parse_schema(text, reference_texts)
