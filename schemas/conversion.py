"""Schema-driven conversion of plain JSON examples into records fastavro can write.

Examples under ``schemas/examples/`` are plain, readable JSON rather than Avro's JSON encoding. The schema
decides how each JSON value is read:

===========================  ==========================================  ===============================
Avro type                    JSON in the example                         Python value produced
===========================  ==========================================  ===============================
timestamp-millis / -micros   ISO 8601 with offset, ``"2026-11-02T08:15:30.120Z"``  aware ``datetime``
date                         ``"2026-11-02"``                            ``date``
decimal (bytes or fixed)     string, ``"129.90"`` (never a JSON number)  ``Decimal``
uuid                         canonical string                            ``uuid.UUID``
bytes / fixed                base64 string                               ``bytes``
enum                         symbol                                      ``str``
union with one non-null      the value itself, or ``null``               converted value or ``None``
union with several branches  ``{"<full or short type name>": value}``    ``(full name, value)`` tuple
===========================  ==========================================  ===============================

The tuple form is fastavro's union branch notation; reading with ``return_record_name=True`` and
``return_record_name_override=True`` gives the same shape back, so examples round-trip exactly. A record
field missing from the example takes the field's default when it has one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.loader import PRIMITIVES as _PRIMITIVES
from schemas.loader import iter_named_types


class ExampleError(ValueError):
    """An example does not fit its schema; the message names the path of the offending value."""


def from_json(schema: dict[str, Any], value: Any) -> Any:
    """Convert a plain JSON example for the expanded ``schema`` into a record fastavro can write."""
    named = {definition["name"]: definition for definition in iter_named_types(schema)}
    return _convert(schema, value, named, "$")


def _convert(schema: Any, value: Any, named: dict[str, Any], path: str) -> Any:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _primitive(schema, value, path)
        if schema not in named:
            raise ExampleError(f"{path}: unknown type {schema!r}")
        return _convert(named[schema], value, named, path)
    if isinstance(schema, list):
        return _union(schema, value, named, path)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical is not None:
        converted = _logical(logical, schema, value, path)
        if converted is not _NOT_LOGICAL:
            return converted
    if kind in ("record", "error"):
        return _record(schema, value, named, path)
    if kind == "enum":
        if value not in schema["symbols"]:
            raise ExampleError(f"{path}: {value!r} is not a symbol of {schema['name']}")
        return value
    if kind == "array":
        if not isinstance(value, list):
            raise ExampleError(f"{path}: expected a JSON array")
        return [_convert(schema["items"], item, named, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise ExampleError(f"{path}: expected a JSON object for a map")
        return {key: _convert(schema["values"], item, named, f"{path}.{key}") for key, item in value.items()}
    if kind == "fixed":
        data = _base64(value, path)
        if len(data) != schema["size"]:
            raise ExampleError(f"{path}: fixed {schema['name']} needs {schema['size']} bytes")
        return data
    return _convert(kind, value, named, path)


def _primitive(kind: str, value: Any, path: str) -> Any:
    if kind == "null":
        if value is not None:
            raise ExampleError(f"{path}: expected null")
        return None
    if kind == "bytes":
        return _base64(value, path)
    if kind == "boolean" and not isinstance(value, bool):
        raise ExampleError(f"{path}: expected true or false")
    if kind in ("int", "long") and (isinstance(value, bool) or not isinstance(value, int)):
        raise ExampleError(f"{path}: expected an integer")
    if kind in ("float", "double") and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ExampleError(f"{path}: expected a number")
    if kind == "string" and not isinstance(value, str):
        raise ExampleError(f"{path}: expected a string")
    return value


def _base64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise ExampleError(f"{path}: bytes are written as a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise ExampleError(f"{path}: invalid base64: {error}") from error


_NOT_LOGICAL = object()


def _logical(logical: str, schema: dict[str, Any], value: Any, path: str) -> Any:
    if logical in ("timestamp-millis", "timestamp-micros"):
        moment = _iso(dt.datetime.fromisoformat, value, path, "an ISO 8601 timestamp")
        if moment.tzinfo is None:
            raise ExampleError(f"{path}: timestamps need an offset, e.g. 'Z'")
        return moment
    if logical == "date":
        return _iso(dt.date.fromisoformat, value, path, "an ISO 8601 date")
    if logical == "decimal":
        if not isinstance(value, str):
            raise ExampleError(f'{path}: decimals are written as strings, e.g. "12.50"')
        try:
            amount = Decimal(value)
        except InvalidOperation as error:
            raise ExampleError(f"{path}: {value!r} is not a decimal") from error
        exponent = amount.as_tuple().exponent
        if not isinstance(exponent, int) or -exponent > int(schema.get("scale", 0)):
            raise ExampleError(f"{path}: {value!r} has more than {schema.get('scale', 0)} decimal places")
        return amount
    if logical == "uuid":
        return _iso(uuid.UUID, value, path, "a UUID")
    return _NOT_LOGICAL


def _iso(parse: Any, value: Any, path: str, what: str) -> Any:
    if not isinstance(value, str):
        raise ExampleError(f"{path}: expected {what} string")
    try:
        return parse(value)
    except ValueError as error:
        raise ExampleError(f"{path}: {value!r} is not {what}") from error


def _record(schema: dict[str, Any], value: Any, named: dict[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExampleError(f"{path}: expected a JSON object for record {schema['name']}")
    fields = {field["name"]: field for field in schema["fields"]}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ExampleError(f"{path}: {schema['name']} has no field(s) {', '.join(unknown)}")
    record: dict[str, Any] = {}
    for name, field in fields.items():
        if name in value:
            record[name] = _convert(field["type"], value[name], named, f"{path}.{name}")
        elif "default" in field:
            record[name] = _convert(field["type"], field["default"], named, f"{path}.{name}")
        else:
            raise ExampleError(f"{path}: missing field {name!r} of {schema['name']} (it has no default)")
    return record


def _branch_name(branch: Any) -> str:
    if isinstance(branch, str):
        return branch
    if branch.get("type") in ("record", "error", "enum", "fixed"):
        return str(branch["name"])
    return str(branch["type"])


def _union(branches: list[Any], value: Any, named: dict[str, Any], path: str) -> Any:
    non_null = [branch for branch in branches if branch != "null"]
    if value is None:
        if len(non_null) == len(branches):
            raise ExampleError(f"{path}: null is not allowed here")
        return None
    if len(non_null) == 1:
        return _convert(non_null[0], value, named, path)
    if not (isinstance(value, dict) and len(value) == 1):
        names = ", ".join(_branch_name(branch) for branch in non_null)
        raise ExampleError(f"{path}: a union of {names} needs an object naming its branch, e.g. {{name: value}}")
    ((chosen, inner),) = value.items()
    for branch in non_null:
        full = _branch_name(branch)
        if chosen in (full, full.rsplit(".", 1)[-1]):
            converted = _convert(branch, inner, named, f"{path}.{chosen}")
            return (full, converted) if full in named else converted
    raise ExampleError(f"{path}: {chosen!r} is not a branch of this union")
