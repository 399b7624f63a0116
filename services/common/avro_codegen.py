"""Avro binary encoding and decoding specialised per schema: Python source generated from a parsed schema,
compiled once per schema object.

``compile_writer(parsed)`` returns ``write(record) -> bytes`` producing exactly the bytes of
``fastavro.schemaless_writer`` for the same record, and raising (``ValueError``, ``TypeError``, ``KeyError``,
``OverflowError``) for every record fastavro rejects. The one deliberate difference: a value outside the 32-bit
range in an Avro ``int`` position is rejected (fastavro writes it as a long that no Avro reader accepts as an int).

How the generated code stays exact:

* Fast paths only handle the exact Python types a record normally carries (``str``, ``int``, ``float``,
  ``bytes``, ``dict``, ``list``, ``None``); anything else in a position goes through the same conversions
  fastavro applies (``float()`` for ``float``/``double`` record fields, ``__int__`` for integers, ``.encode()``
  for strings) or is handed to fastavro's public ``schemaless_writer`` for that value and sub-schema (as the only
  field of a wrapper record, with the schema's named types).
* Logical types reuse fastavro's ``LOGICAL_WRITERS`` prepare functions whenever the value is not already the
  underlying primitive (naive datetimes, UUID objects), except decimals in ``bytes`` positions: a ``Decimal``
  whose plain string has exactly ``scale`` digits after the point and at most ``precision`` digits is written as
  its unscaled integer (``int.to_bytes``, the same byte count as fastavro); every other ``Decimal`` (other
  exponents, too many digits, NaN, infinities) goes through fastavro's prepare and its errors.
* Unions whose branches are records and ``"null"`` take a fast path: ``None``; a ``(name, dict)`` tuple (the
  named branch, without validation, as fastavro does); a plain dict, for which every record branch is validated
  by generated validators that answer exactly as fastavro's validator (or leave the decision to fastavro)
  and the branch is chosen by fastavro's rule: among the valid record branches the one with the most of its
  fields present in the dict, the first one on a tie. The chosen branch is written by the compiled record code.
* ``["null", T]`` unions take a fast path when the value is ``None`` or plainly of ``T``'s type (maps and
  arrays checked with a generated validator, as fastavro's union writer validates them); every other union
  value, and every other union shape, is written by fastavro's union writer.
* Records are first written assuming a plain ``dict`` with every field present; a missing field or another
  mapping type makes the record be rewritten by a second generated variant that applies defaults exactly as
  fastavro does.
* Recursive named types are written by fastavro from the point of recursion; a schema the generator does not
  handle at all yields a writer that calls ``fastavro.schemaless_writer``, with a warning naming the schema.

Only fastavro's public API is used (``parse_schema``, ``schemaless_writer``/``schemaless_reader``,
``validation.validate``, the logical-type tables of ``fastavro.read``/``fastavro.write``); no private module.

``compile_reader(parsed)`` decodes a body to the values ``fastavro.schemaless_reader`` returns without a reader
schema (logical types converted by fastavro's ``LOGICAL_READERS``). It rejects every body fastavro rejects, and a
few fastavro silently accepts: negative union or enum indexes, varints beyond 64 bits. Schemas with recursive
named types have no compiled reader (a warning names the schema; fastavro reads it).

Kept because ``make bench`` (``tests/bench/bench_common.py``: ``codegen.*`` and ``producer.*`` rows) shows the
producer's Avro goal met with it and missed with fastavro's schemaless writer in the same run.
"""

from __future__ import annotations

import array
import io
import itertools
import logging
import math
import struct
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import fastavro
import fastavro.validation
from fastavro.const import NAMED_TYPES
from fastavro.read import LOGICAL_READERS
from fastavro.schema import extract_logical_type, extract_record_type
from fastavro.write import LOGICAL_WRITERS

from schemas.loader import PRIMITIVES

log = logging.getLogger(__name__)

_WRAPPER_FIELD = "v"


def _by_reference(schema: Any, named: Mapping[str, Any]) -> Any:
    """``schema`` with every named type defined in ``named`` replaced by its name (so that it can be parsed
    again with ``named`` as the known types)."""
    if isinstance(schema, list):
        return [_by_reference(branch, named) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in NAMED_TYPES and schema.get("name") in named:
        return schema["name"]
    plain = {k: v for k, v in schema.items() if not k.startswith("__")}
    if kind == "array":
        plain["items"] = _by_reference(schema["items"], named)
    elif kind == "map":
        plain["values"] = _by_reference(schema["values"], named)
    elif kind in NAMED_TYPES:
        plain["fields"] = [{**f, "type": _by_reference(f["type"], named)} for f in schema.get("fields", [])]
    return plain


class _ValueWriter:
    """Writes one value of a sub-schema with fastavro's public schemaless writer: the generated code hands the
    values it does not handle itself (unusual Python types, recursion) to it. The value is written as the only
    field of a wrapper record, whose encoding is exactly the field's."""

    def __init__(self, schema: Any, named: Mapping[str, Any]) -> None:
        wrapper = {
            "type": "record",
            "name": "freightline_codegen_value",
            "fields": [{"name": _WRAPPER_FIELD, "type": _by_reference(schema, named)}],
        }
        self.parsed = fastavro.parse_schema(wrapper, dict(named))

    def __call__(self, buf: bytearray, value: Any) -> None:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, {_WRAPPER_FIELD: value})
        buf += out.getvalue()

    def accepts(self, value: Any) -> bool:
        """fastavro's (public) validator's verdict on ``value`` for the sub-schema."""
        return bool(fastavro.validation.validate({_WRAPPER_FIELD: value}, self.parsed, raise_errors=False))


__all__ = [
    "CompiledReader",
    "CompiledWriter",
    "SourceEmitter",
    "compile_reader",
    "compile_writer",
    "generated_source",
    "reader_for",
    "writer_for",
]

Record = Mapping[str, Any]

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
# Logical types whose prepare function returns a value of the underlying Python type unchanged.
_PASS_THROUGH: dict[str, type] = {
    "long-timestamp-millis": int,
    "long-local-timestamp-millis": int,
    "long-timestamp-micros": int,
    "long-local-timestamp-micros": int,
    "int-date": int,
    "int-time-millis": int,
    "long-time-micros": int,
    "bytes-decimal": bytes,
    "fixed-decimal": bytes,
    "string-uuid": str,
}
_SMALL = 1 << 14  # zig-zag values below this take one or two bytes: looked up in a table

_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_FLOAT = struct.Struct("<f").pack


class UnsupportedSchema(Exception):
    """The generator does not handle this schema; the writer falls back to fastavro."""


class _Retry(Exception):
    """Raised by the fast variant when a record is not a plain dict; the general variant takes over."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Tables:
    """Varint tables, built on first use: ``final[z]`` encodes ``z < 2**14``; ``low[z]`` is two continued groups."""

    _lock = threading.Lock()
    final: list[bytes] = []
    low: list[bytes] = []

    @classmethod
    def ensure(cls) -> None:
        with cls._lock:
            if not cls.final:
                cls.low = [bytes(((x & 0x7F) | 0x80, ((x >> 7) & 0x7F) | 0x80)) for x in range(_SMALL)]
                cls.final = [_varint(z) for z in range(_SMALL)]


def _unsigned(value: int) -> bytes:
    """Varint of a non-negative count or length, zig-zag encoded."""
    return _varint(value << 1)


def _coerce_long(value: Any) -> int:
    """An integer as fastavro's compiled writer converts it (``__int__``), checked against the long range."""
    if isinstance(value, int):
        number = int(value)
    else:
        convert = getattr(type(value), "__int__", None)
        if convert is None:
            raise TypeError(f"an integer is required, not {type(value).__name__}")
        number = int(convert(value))
    if not LONG_MIN <= number <= LONG_MAX:
        raise OverflowError(f"{number} does not fit in an Avro long")
    return number


def _coerce_int(value: Any) -> int:
    number = _coerce_long(value)
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError(f"{number} does not fit in an Avro int")
    return number


def _pack_float(value: Any) -> bytes:
    """A 32-bit float as fastavro writes it: doubles beyond the float range become infinities."""
    try:
        return _PACK_FLOAT(value)
    except OverflowError:
        as_double = float(value)
        return _PACK_FLOAT(math.copysign(math.inf, as_double))


def _enum_fallback(value: Any, symbols: list[str], encoded: list[bytes]) -> bytes:
    return encoded[symbols.index(value)]


def _fixed_size_error(value: Any, size: int) -> ValueError:
    return ValueError(f"data of length {len(value)} does not match fixed size {size}")


def _missing_field(name: str) -> ValueError:
    return ValueError(f"no value and no default for {name}")


# Validation verdicts of the generated validators: 1 fastavro's validator accepts the value, 0 it rejects it,
# -1 not decided here (fastavro itself decides). Values of these builtin types that fail a validator's fast
# check are certainly rejected by fastavro's validator (for arrays, bytes is a sequence: not decided here).
_REJECTED: dict[type, int] = dict.fromkeys((type(None), bool, int, float, str, bytes, dict, list), 0)
_REJECTED_ARRAY: dict[type, int] = {kind: 0 for kind in _REJECTED if kind is not bytes}
# Types whose validation the generated validators inline in ``[null, T]`` positions.
_INLINE_VALIDATED = frozenset({"boolean", "int", "long", "float", "double", "string", "bytes", "enum", "fixed"})


def _decimal_fits(value: Decimal, scale: int, limit: int) -> bool:
    """Whether the generated conversion of a ``Decimal`` applies: finite, exponent exactly ``-scale`` (its
    plain string has ``scale`` digits after the point) and an unscaled value below ``limit`` (10**precision),
    in which case fastavro's decimal prepare accepts it too."""
    head, _, tail = str(value).partition(".")
    return len(tail) == scale and tail.isdigit() and -limit < int(head + tail) < limit


def _decimal_slow(value: Any, prepare: Callable[[Any, Any], Any], schema: Any) -> bytes:
    """A ``Decimal`` the generated fast conversion does not take: fastavro's prepare converts it or raises."""
    return bytes(prepare(value, schema))


class SourceEmitter:
    """Source lines plus the namespace of constants they refer to: the base of every code generator here and in
    ``avro_validate``. ``namespace``: the names the generated code uses besides its constants."""

    def __init__(self, namespace: Mapping[str, Any] | None = None) -> None:
        self.namespace: dict[str, Any] = dict(namespace or {})
        self._constants: dict[int, str] = {}
        self._counter = itertools.count()
        self.lines: list[str] = []

    def const(self, value: Any, prefix: str = "K") -> str:
        """A global name bound to ``value`` in the generated code."""
        key = id(value)
        name = self._constants.get(key)
        if name is None:
            name = f"{prefix}{next(self._counter)}"
            self._constants[key] = name
            self.namespace[name] = value
        return name

    def var(self, prefix: str = "v") -> str:
        return f"{prefix}{next(self._counter)}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


class _SchemaGenerator(SourceEmitter):
    """A generator of code for one parsed schema and its named types (``stack``: the named types being expanded,
    where a reference to one of them recurses)."""

    def __init__(self, parsed: Any, named: dict[str, Any], namespace: Mapping[str, Any]) -> None:
        super().__init__(namespace)
        self.parsed = parsed
        self.named = named
        self.stack: list[str] = []


class _Generator(_SchemaGenerator):
    """Emits the source of two functions (fast and general variant) appending one value to ``buf``."""

    def __init__(self, parsed: Any, named: dict[str, Any]) -> None:
        super().__init__(
            parsed,
            named,
            {
                "FIN": _Tables.final,
                "LOW": _Tables.low,
                "PD": _PACK_DOUBLE,
                "PF": _pack_float,
                "UNS": _unsigned,
                "CL": _coerce_long,
                "CI": _coerce_int,
                "ENUMX": _enum_fallback,
                "FIXERR": _fixed_size_error,
                "MISSING": _missing_field,
                "RETRY": _Retry,
                "NAMED": named,
                "float": float,
                "int": int,
                "str": str,
                "bytes": bytes,
                "bool": bool,
                "dict": dict,
                "list": list,
                "type": type,
                "len": len,
                "isinstance": isinstance,
                "tuple": tuple,
                "ARRAY": array.array,
                "DEC": Decimal,
                "DECOK": _decimal_fits,
                "DECX": _decimal_slow,
                "REJ": _REJECTED,
                "REJA": _REJECTED_ARRAY,
            },
        )
        self.general = False
        self.validator_lines: list[str] = []  # the generated validators, module-level functions
        self._validators: dict[int, str] = {}
        self._value_writers: dict[int, _ValueWriter] = {}

    def value_writer(self, schema: Any) -> _ValueWriter:
        found = self._value_writers.get(id(schema))
        if found is None:
            found = self._value_writers[id(schema)] = _ValueWriter(schema, self.named)
        return found

    def resolve(self, schema: Any) -> tuple[Any, str | None]:
        """The schema a (possibly named-reference) schema stands for, and the reference's name if it is one."""
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise UnsupportedSchema(f"unknown named type {schema}")
            return self.named[schema], schema
        return schema, None

    def delegate(self, indent: int, value: str, schema: Any) -> None:
        self.emit(indent, f"{self.const(self.value_writer(schema), 'FA')}(buf, {value})")

    # -- top level -----------------------------------------------------------------------------------------
    def function(self, name: str, general: bool) -> None:
        self.general = general
        self.stack = []
        self.emit(0, f"def {name}(buf, r):")
        start = len(self.lines)
        self.value(1, "r", self.parsed)
        if len(self.lines) == start:
            self.emit(1, "pass")
        self.emit(0, "")

    # -- values --------------------------------------------------------------------------------------------
    def value(self, indent: int, v: str, schema: Any, record_field: bool = False) -> None:
        """Append the encoding of local ``v`` per ``schema``; ``record_field``: ``schema`` is a record field's type."""
        if record_field and schema in ("float", "double"):
            # fastavro converts record fields declared exactly "float"/"double" with float() ("NaN" strings).
            self.emit(indent, f"{v} = float({v})")
        resolved, ref = self.resolve(schema)
        if ref is not None and ref in self.stack:
            self.delegate(indent, v, ref)  # recursive type: fastavro writes it from here on
            return
        if isinstance(resolved, dict):
            logical = extract_logical_type(resolved)
            prepare = LOGICAL_WRITERS.get(logical) if logical else None
            if prepare is not None:
                fn = self.const(prepare, "P")
                sch = self.const(resolved, "S")
                primitive = _PASS_THROUGH.get(logical or "")
                kind = extract_record_type(resolved)
                decimal = logical == "bytes-decimal" and self.decimal_usable(resolved)
                if decimal:
                    self.emit(indent, f"if type({v}) is DEC:")
                    self.decimal(indent + 1, v, resolved, prepare)
                    self.emit(indent, "else:")
                    indent += 1
                    self.emit(indent, f"if type({v}) is not bytes:")
                    self.emit(indent + 1, f"{v} = {fn}({v}, {sch})")
                elif primitive is int and kind in ("int", "long"):
                    self.integer(indent, v, kind, prepare=f"{fn}({v}, {sch})")
                    return
                elif primitive is not None:
                    self.emit(indent, f"if type({v}) is not {primitive.__name__}:")
                    self.emit(indent + 1, f"{v} = {fn}({v}, {sch})")
                else:
                    self.emit(indent, f"{v} = {fn}({v}, {sch})")
        self.plain(indent, v, resolved)

    @staticmethod
    def decimal_usable(schema: dict[str, Any]) -> bool:
        scale, precision = schema.get("scale", 0), schema.get("precision")
        return type(scale) is int and type(precision) is int and scale > 0 and precision > 0

    def decimal(self, indent: int, v: str, schema: dict[str, Any], prepare: Any) -> None:
        """Write ``v``, exactly a ``Decimal``, in a bytes/decimal position (``decimal_usable``) as fastavro does:
        when its exponent is exactly ``-scale`` (its plain string has ``scale`` digits after the point) and it
        has at most ``precision`` digits, the unscaled integer's big-endian two's complement in
        ``(bit_length + 8) // 8`` bytes, like fastavro; every other ``Decimal`` (other exponents, too many
        digits, infinities and NaNs) through fastavro's prepare, which converts it or raises."""
        scale, limit = schema["scale"], 10 ** schema["precision"]
        fn, sch = self.const(prepare, "P"), self.const(schema, "S")
        head, point, tail, unscaled, body = self.var("h"), self.var("d"), self.var("t"), self.var("u"), self.var("b")
        self.emit(indent, f"{head}, {point}, {tail} = str({v}).partition('.')")
        fits = f"-{limit} < ({unscaled} := int({head} + {tail})) < {limit}"
        self.emit(indent, f"if len({tail}) == {scale} and {tail}.isdigit() and {fits}:")
        self.emit(indent + 1, f"{body} = {unscaled}.to_bytes(({unscaled}.bit_length() + 8) >> 3, 'big', signed=True)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{body} = DECX({v}, {fn}, {sch})")
        self.length_prefixed(indent, body)

    def plain(self, indent: int, v: str, schema: Any) -> None:
        """Encode ``v`` per ``schema`` (already resolved, logical conversion already applied)."""
        kind = extract_record_type(schema)
        if kind == "null":
            return
        if kind == "boolean":
            self.emit(indent, f"buf.append(1 if {v} else 0)")
        elif kind in ("int", "long"):
            self.integer(indent, v, kind)
        elif kind == "float":
            self.emit(indent, f"buf += PF({v})")
        elif kind == "double":
            self.emit(indent, f"buf += PD({v})")
        elif kind == "string":
            b = self.var("b")
            self.emit(indent, f"{b} = {v}.encode()")
            self.length_prefixed(indent, b)
        elif kind == "bytes":
            self.emit(indent, f"if type({v}) is bytes:")
            self.length_prefixed(indent + 1, v)
            self.emit(indent, "else:")
            self.delegate(indent + 1, v, "bytes")
        elif kind == "fixed":
            size = int(schema["size"])
            self.emit(indent, f"if len({v}) != {size}:")
            self.emit(indent + 1, f"raise FIXERR({v}, {size})")
            self.emit(indent, f"buf += {v}")
        elif kind == "enum":
            self.enum(indent, v, schema)
        elif kind == "array":
            self.array(indent, v, schema)
        elif kind == "map":
            self.map(indent, v, schema)
        elif kind == "record":
            self.record(indent, v, schema)
        elif kind == "union":
            self.union(indent, v, schema)
        else:
            raise UnsupportedSchema(f"type {kind!r}")

    def integer(self, indent: int, v: str, kind: str, prepare: str | None = None) -> None:
        """``prepare``: the logical type's conversion, applied first to anything but an ``int``."""
        lo, hi, coerce = (INT_MIN, INT_MAX, "CI") if kind == "int" else (LONG_MIN, LONG_MAX, "CL")
        if prepare is None:
            self.emit(indent, f"if type({v}) is not int or not {lo} <= {v} <= {hi}:")
            self.emit(indent + 1, f"{v} = {coerce}({v})")
        else:
            self.emit(indent, f"if type({v}) is not int:")
            self.emit(indent + 1, f"{v} = {prepare}")
            self.emit(indent + 1, f"if type({v}) is not int or not {lo} <= {v} <= {hi}:")
            self.emit(indent + 2, f"{v} = {coerce}({v})")
            self.emit(indent, f"elif not {lo} <= {v} <= {hi}:")
            self.emit(indent + 1, f"{v} = {coerce}({v})")
        self.zigzag(indent, f"({v} << 1) ^ ({v} >> 63)")

    def zigzag(self, indent: int, expression: str) -> None:
        """Varint of a zig-zag value: one table lookup per 14 bits (two and three groups unrolled: timestamps in
        milliseconds take three)."""
        z = self.var("z")
        mask = _SMALL - 1
        self.emit(indent, f"{z} = {expression}")
        self.emit(indent, f"if {z} < {_SMALL}:")
        self.emit(indent + 1, f"buf += FIN[{z}]")
        self.emit(indent, f"elif {z} < {1 << 28}:")
        self.emit(indent + 1, f"buf += LOW[{z} & {mask}]")
        self.emit(indent + 1, f"buf += FIN[{z} >> 14]")
        self.emit(indent, f"elif {z} < {1 << 42}:")
        self.emit(indent + 1, f"buf += LOW[{z} & {mask}]")
        self.emit(indent + 1, f"buf += LOW[({z} >> 14) & {mask}]")
        self.emit(indent + 1, f"buf += FIN[{z} >> 28]")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"while {z} >= {_SMALL}:")
        self.emit(indent + 2, f"buf += LOW[{z} & {_SMALL - 1}]")
        self.emit(indent + 2, f"{z} >>= 14")
        self.emit(indent + 1, f"buf += FIN[{z}]")

    def count(self, indent: int, n: str) -> None:
        self.emit(indent, f"buf += FIN[{n} + {n}] if {n} < {_SMALL // 2} else UNS({n})")

    def length_prefixed(self, indent: int, b: str) -> None:
        n = self.var("n")
        self.emit(indent, f"{n} = len({b})")
        self.count(indent, n)
        self.emit(indent, f"buf += {b}")

    def enum(self, indent: int, v: str, schema: dict[str, Any]) -> None:
        symbols = list(schema["symbols"])
        encoded = [_varint(i << 1) for i in range(len(symbols))]
        table = self.const(dict(zip(symbols, encoded, strict=True)), "E")
        syms, encs = self.const(symbols, "SY"), self.const(encoded, "EN")
        self.emit(indent, "try:")
        self.emit(indent + 1, f"buf += {table}[{v}]")
        self.emit(indent, "except (KeyError, TypeError):")
        self.emit(indent + 1, f"buf += ENUMX({v}, {syms}, {encs})")

    def array(self, indent: int, v: str, schema: dict[str, Any]) -> None:
        self.emit(indent, f"if type({v}) is not list:")
        self.emit(indent + 1, f"{v} = {v} if isinstance({v}, ARRAY) else list({v})")
        self.emit(indent, f"if type({v}) is list:")
        n, item = self.var("n"), self.var("i")
        self.emit(indent + 1, f"{n} = len({v})")
        self.emit(indent + 1, f"if {n}:")
        self.count(indent + 2, n)
        self.emit(indent + 2, f"for {item} in {v}:")
        before = len(self.lines)
        self.value(indent + 3, item, schema["items"])
        if len(self.lines) == before:
            self.emit(indent + 3, "pass")
        self.emit(indent + 1, "buf.append(0)")
        self.emit(indent, "else:")  # array.array: fastavro has a dedicated writer for it
        self.delegate(indent + 1, v, schema)

    def map(self, indent: int, v: str, schema: dict[str, Any]) -> None:
        n, key, item, kb = self.var("n"), self.var("k"), self.var("i"), self.var("b")
        self.emit(indent, f"{n} = len({v})")
        self.emit(indent, f"if {n} > 0:")
        self.count(indent + 1, n)
        self.emit(indent + 1, f"for {key}, {item} in {v}.items():")
        self.emit(indent + 2, f"{kb} = {key}.encode()")
        self.length_prefixed(indent + 2, kb)
        self.value(indent + 2, item, schema["values"])
        self.emit(indent, "buf.append(0)")

    def record(self, indent: int, v: str, schema: dict[str, Any], checked: bool = False) -> None:
        """``checked``: ``v`` is known to be a plain dict."""
        name = schema.get("name", "")
        self.stack.append(name)
        if not self.general and not checked:
            self.emit(indent, f"if type({v}) is not dict:")
            self.emit(indent + 1, "raise RETRY")
        for field in schema["fields"]:
            fname = field["name"]
            x = self.var("x")
            if not self.general:
                self.emit(indent, f"{x} = {v}[{fname!r}]")
            else:
                default = self.const(field["default"], "D") if "default" in field else "None"
                ftype = field["type"]
                self.emit(indent, f"if {fname!r} in {v}:")
                self.emit(indent + 1, f"{x} = {v}.get({fname!r}, {default})")
                self.emit(indent, "else:")
                if "default" in field or "null" in ftype:
                    self.emit(indent + 1, f"{x} = {default}")
                else:
                    self.emit(indent + 1, f"raise MISSING({fname!r})")
            self.value(indent, x, field["type"], record_field=True)
        self.stack.pop()

    def union(self, indent: int, v: str, schema: list[Any]) -> None:
        branches = list(schema)
        if self.record_union(indent, v, schema):
            return
        if len(branches) == 2 and "null" in branches and branches[0] != branches[1]:
            null_index = branches.index("null")
            other_index = 1 - null_index
            if self.nullable(indent, v, schema, null_index, other_index):
                return
        self.delegate(indent, v, schema)

    def record_union(self, indent: int, v: str, union: list[Any]) -> bool:
        """Fast path of a union of records (and ``"null"``); False when the union has another shape.

        The branch is chosen exactly as fastavro's union writer chooses it: ``None`` takes ``"null"``; a
        ``(name, dict)`` tuple takes the branch of that name without validation; for a plain dict every record
        branch is validated (generated validators, see :meth:`validator`) and the valid branch with the most
        fields present in the dict wins, the first one on a tie. The chosen branch is written by the compiled
        record code. Anything else, a validation the validators leave undecided, or a dict no branch accepts
        (fastavro raises) goes to fastavro's union writer."""
        null_index: int | None = None
        records: list[tuple[int, dict[str, Any]]] = []
        for index, branch in enumerate(union):
            resolved, ref = self.resolve(branch)
            if resolved == "null":
                null_index = index if null_index is None else null_index
                continue
            if not isinstance(resolved, dict) or resolved.get("type") != "record":
                return False
            if (ref is not None and ref in self.stack) or LOGICAL_WRITERS.get(extract_logical_type(resolved) or ""):
                return False
            records.append((index, resolved))
        if not records or len(union) > 64:
            return False
        # Tuple notation: fastavro takes the first branch whose name matches (records: their full name).
        by_name: dict[str, int] = {}
        for index, branch in enumerate(union):
            kind = extract_record_type(branch)
            by_name.setdefault(branch["name"] if kind in NAMED_TYPES else kind, index)
        record_indexes = {index for index, _ in records}
        names = self.const({name: index for name, index in by_name.items() if index in record_indexes}, "UN")
        validators = {index: self.validator(resolved) for index, resolved in records}
        k, item = self.var("k"), self.var("d")
        if null_index is not None:
            self.emit(indent, f"if {v} is None:")
            self.emit(indent + 1, f"buf.append({null_index << 1})")
            self.emit(indent, "else:")
            indent += 1
        # k: the chosen branch; -1 none (fastavro raises), -2 undecided, -3 not a dict or a tuple: fastavro decides.
        self.emit(indent, f"{k} = -3")
        self.emit(indent, f"{item} = {v}")
        self.emit(indent, f"if type({v}) is dict:")
        inner = indent + 1
        if len(records) == 1:
            index = records[0][0]
            self.emit(inner, f"{k} = {index} if {validators[index]}({v}) == 1 else -2")
        else:
            most, verdict, present = self.var("m"), self.var("r"), self.var("c")
            self.emit(inner, f"{k} = -1")
            self.emit(inner, f"{most} = -1")
            for position, (index, resolved) in enumerate(records):
                level = inner
                if position:
                    self.emit(inner, f"if {k} != -2:")
                    level += 1
                self.emit(level, f"{verdict} = {validators[index]}({v})")
                self.emit(level, f"if {verdict} == 1:")
                fields = [field["name"] for field in resolved["fields"]]
                if not fields:
                    count = "0"
                elif len(fields) <= 12:
                    count = " + ".join(f"({name!r} in {v})" for name in fields)
                else:
                    count = f"len({self.const(frozenset(fields), 'FS')}.intersection({v}))"
                self.emit(level + 1, f"{present} = {count}")
                self.emit(level + 1, f"if {present} > {most}:")
                self.emit(level + 2, f"{k} = {index}")
                self.emit(level + 2, f"{most} = {present}")
                self.emit(level, f"elif {verdict} < 0:")
                self.emit(level + 1, f"{k} = -2")
        name = self.var("n")
        self.emit(indent, f"elif type({v}) is tuple and len({v}) == 2:")
        self.emit(inner, f"{name}, {item} = {v}")
        self.emit(inner, f"if type({name}) is str and type({item}) is dict:")
        self.emit(inner + 1, f"{k} = {names}.get({name}, -3)")
        for position, (index, resolved) in enumerate(records):
            self.emit(indent, f"{'if' if position == 0 else 'elif'} {k} == {index}:")
            self.emit(inner, f"buf.append({index << 1})")
            self.record(inner, item, resolved, checked=True)
        self.emit(indent, "else:")
        self.delegate(inner, v, union)
        return True

    def nullable(self, indent: int, v: str, union: list[Any], null_index: int, other_index: int) -> bool:
        """Fast path of ``["null", T]``/``[T, "null"]``; False when ``T`` has no fast path (delegated)."""
        branch = union[other_index]
        resolved, ref = self.resolve(branch)
        if ref is not None and ref in self.stack:
            return False
        kind = extract_record_type(resolved)
        logical = extract_logical_type(resolved) if isinstance(resolved, dict) else None
        prepare = LOGICAL_WRITERS.get(logical) if logical else None
        if prepare is not None and logical not in _PASS_THROUGH:
            return False
        p = v
        test: str
        if kind in ("int", "long"):
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            test = f"type({{p}}) is int and {lo} <= {{p}} <= {hi}"
        elif kind in ("float", "double"):
            test = "type({p}) is float"
        elif kind == "boolean":
            test = "type({p}) is bool"
        elif kind == "string":
            test = "type({p}) is str"
        elif kind == "bytes":
            test = "type({p}) is bytes"
        elif kind == "enum":
            table = self.const({s: None for s in resolved["symbols"]}, "ES")
            test = f"type({{p}}) is str and {{p}} in {table}"
        elif kind == "fixed":
            test = f"type({{p}}) is bytes and len({{p}}) == {int(resolved['size'])}"
        elif kind in ("map", "array"):
            # fastavro validates the value against T first: the generated validator decides or defers to it.
            container = "list" if kind == "array" else "dict"
            test = f"type({{p}}) is {container} and {self.validator(resolved)}({{p}}) == 1"
        else:
            return False
        null_byte, other_byte = null_index << 1, other_index << 1
        self.emit(indent, f"if {v} is None:")
        self.emit(indent + 1, f"buf.append({null_byte})")
        self.emit(indent, "else:")
        inner = indent + 1
        if prepare is not None:
            fn = self.const(prepare, "P")
            if logical == "bytes-decimal" and self.decimal_usable(resolved):
                # fastavro's validator accepts a Decimal exactly when its conversion succeeds (else it raises
                # the conversion's error, as the conversion here does).
                self.emit(inner, f"if type({v}) is DEC:")
                self.emit(inner + 1, f"buf.append({other_byte})")
                self.decimal(inner + 1, v, resolved, prepare)
                self.emit(inner, "else:")
                inner += 1
            p = self.var("p")
            primitive = _PASS_THROUGH[logical or ""].__name__
            self.emit(inner, f"{p} = {v} if type({v}) is {primitive} else {fn}({v}, {self.const(resolved, 'S')})")
        self.emit(inner, f"if {test.format(p=p)}:")
        self.emit(inner + 1, f"buf.append({other_byte})")
        before = len(self.lines)
        self.plain(inner + 1, p, resolved)
        if len(self.lines) == before:
            self.emit(inner + 1, "pass")
        self.emit(inner, "else:")
        self.delegate(inner + 1, v, union)
        return True

    # -- validators ----------------------------------------------------------------------------------------
    # fastavro's union writer validates a value against the branches (as ``fastavro.validation.validate``) to
    # choose one. The generated validators give the same answer without calling it: each returns 1 (accepted),
    # 0 (rejected) or -1 (not decided: the caller hands the whole union to fastavro). A value is only accepted
    # when it has exactly a Python type fastavro's validator accepts for the position (with the same range and
    # membership checks) and only rejected when its builtin type makes fastavro's validator reject it; ``None``
    # in a logical-type position gets the verdict fastavro gives ``None`` there, computed once at generation.

    def none_verdict(self, schema: Any) -> int:
        try:
            return 1 if self.value_writer(schema).accepts(None) else 0
        except Exception:  # fastavro raises for None here: undecided, so that fastavro raises it
            return -1

    def check(self, x: str, schema: Any) -> tuple[str, str]:
        """``(accept, otherwise)``: an expression true when fastavro's validator surely accepts ``x`` for
        ``schema``, and the verdict expression to use when it is false."""
        resolved, _ = self.resolve(schema)
        kind = extract_record_type(resolved)
        logical = extract_logical_type(resolved) if isinstance(resolved, dict) else None
        prepare = LOGICAL_WRITERS.get(logical) if logical else None
        otherwise = f"REJ.get(type({x}), -1)"
        if prepare is not None:
            otherwise = f"({self.none_verdict(resolved)} if {x} is None else -1)"
            if logical == "bytes-decimal":
                scale, precision = resolved.get("scale", 0), resolved.get("precision")
                if type(scale) is int and type(precision) is int and scale > 0 and precision > 0:
                    return (
                        f"type({x}) is bytes or (type({x}) is DEC and DECOK({x}, {scale}, {10**precision}))",
                        otherwise,
                    )
                return f"type({x}) is bytes", otherwise
            if logical not in _PASS_THROUGH:
                return "False", otherwise
        if kind == "null":
            return f"{x} is None", "0"
        if kind == "boolean":
            return f"type({x}) is bool", "0"
        if kind in ("int", "long"):
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            return f"type({x}) is int and {lo} <= {x} <= {hi}", otherwise
        if kind in ("float", "double"):
            return f"type({x}) is float or type({x}) is int", otherwise
        if kind == "string":
            return f"type({x}) is str", otherwise
        if kind == "bytes":
            return f"type({x}) is bytes", otherwise
        if kind == "fixed":
            return f"type({x}) is bytes and len({x}) == {int(resolved['size'])}", otherwise
        if kind == "enum":
            table = self.const({s: None for s in resolved["symbols"]}, "ES")
            return f"type({x}) is str and {x} in {table}", otherwise
        if kind == "union" and len(resolved) == 2 and "null" in resolved:
            other, _ = self.resolve(resolved[1 - resolved.index("null")])
            plain = not isinstance(other, dict) or not LOGICAL_WRITERS.get(extract_logical_type(other) or "")
            if other != "null" and extract_record_type(other) in _INLINE_VALIDATED and plain:
                # None and values of the other branch: accepted whatever the order (fastavro's validator rejects
                # None for these types without raising); the rest as that branch decides.
                accept, otherwise = self.check(x, other)
                return f"{x} is None or ({accept})", otherwise
        if kind in ("record", "array", "map", "union") and logical is None:
            return "", self.validator(resolved)
        return "False", "-1"

    def check_lines(self, indent: int, x: str, schema: Any) -> None:
        """Statements returning the verdict from the generated function unless ``x`` is accepted."""
        accept, otherwise = self.check(x, schema)
        if accept:
            self.emit(indent, f"if not ({accept}):")
            self.emit(indent + 1, f"return {otherwise}")
        else:
            verdict = self.var("r")
            self.emit(indent, f"{verdict} = {otherwise}({x})")
            self.emit(indent, f"if {verdict} != 1:")
            self.emit(indent + 1, f"return {verdict}")

    def validator(self, schema: Any) -> str:
        """The name of the generated validator of a record, array, map or union schema (built once)."""
        key = id(schema)
        name = self._validators.get(key)
        if name is not None:
            return name
        name = f"V{next(self._counter)}"
        self._validators[key] = name  # before the body: recursive types call themselves
        saved, self.lines = self.lines, []
        self.emit(0, f"def {name}(x):")
        kind = extract_record_type(schema)
        if kind == "record":
            self.emit(1, "if type(x) is not dict:")
            self.emit(2, "return REJ.get(type(x), -1)")
            self.emit(1, "if '-type' in x:")  # fastavro compares it with a name that depends on the path
            self.emit(2, "return -1")
            for field in schema["fields"]:
                value = self.var("f")
                default = f", {self.const(field['default'], 'D')}" if "default" in field else ""
                self.emit(1, f"{value} = x.get({field['name']!r}{default})")
                self.check_lines(1, value, field["type"])
            self.emit(1, "return 1")
        elif kind == "array":
            item = self.var("i")
            self.emit(1, "if type(x) is not list:")
            self.emit(2, "return REJA.get(type(x), -1)")
            self.emit(1, f"for {item} in x:")
            self.check_lines(2, item, schema["items"])
            self.emit(1, "return 1")
        elif kind == "map":
            key_, item = self.var("k"), self.var("i")
            self.emit(1, "if type(x) is not dict:")
            self.emit(2, "return REJ.get(type(x), -1)")
            self.emit(1, f"for {key_} in x:")
            self.emit(2, f"if type({key_}) is not str:")
            self.emit(3, f"return REJ.get(type({key_}), -1)")
            self.emit(1, f"for {item} in x.values():")
            self.check_lines(2, item, schema["values"])
            self.emit(1, "return 1")
        else:  # union: the first accepting branch; undecided as soon as a branch is undecided
            self.emit(1, "if isinstance(x, tuple):")  # tuple notation: fastavro decides
            self.emit(2, "return -1")
            for branch in schema:
                accept, otherwise = self.check("x", branch)
                if accept:
                    self.emit(1, f"if {accept}:")
                    self.emit(2, "return 1")
                    verdict = otherwise
                else:
                    verdict = f"{otherwise}(x)"
                if verdict != "0":
                    result = self.var("r")
                    self.emit(1, f"{result} = {verdict}")
                    self.emit(1, f"if {result}:")
                    self.emit(2, f"return {result}")
            self.emit(1, "return 0")
        self.emit(0, "")
        self.validator_lines.extend(self.lines)
        self.lines = saved
        return name


_ENTRY = """
def append(buf, r):
    start = len(buf)
    try:
        try:
            _fast(buf, r)
        except (KeyError, RETRY):
            del buf[start:]
            _general(buf, r)
    except AttributeError as error:
        raise TypeError(str(error)) from error
    except STRUCT_ERROR as error:
        raise TypeError(str(error)) from error


def write(r):
    buf = bytearray()
    append(buf, r)
    return bytes(buf)
"""


class CompiledWriter:
    """A schema's writer: ``append(buf, record)`` extends a bytearray, ``write(record)`` returns the bytes."""

    def __init__(
        self,
        append: Callable[[bytearray, Any], None],
        write: Callable[[Any], bytes],
        source: str | None,
    ) -> None:
        self.append = append
        self.write = write
        self.source = source  # None: the fastavro fallback

    @property
    def compiled(self) -> bool:
        return self.source is not None

    def __call__(self, record: Any) -> bytes:
        return self.write(record)


def _fallback(parsed: Any) -> CompiledWriter:
    def append(buf: bytearray, record: Any) -> None:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        buf += out.getvalue()

    def write(record: Any) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    return CompiledWriter(append, write, None)


def _generate(parsed: Any, named: dict[str, Any]) -> CompiledWriter:
    _Tables.ensure()
    generator = _Generator(parsed, named)
    generator.function("_fast", general=False)
    generator.function("_general", general=True)
    source = "\n".join(generator.validator_lines + generator.lines) + _ENTRY
    namespace = dict(generator.namespace)
    namespace["STRUCT_ERROR"] = struct.error
    exec(compile(source, f"<avro writer {_schema_label(parsed)}>", "exec"), namespace)
    return CompiledWriter(namespace["append"], namespace["write"], source)


def _schema_label(parsed: Any) -> str:
    if isinstance(parsed, dict):
        return str(parsed.get("name") or parsed.get("type"))
    return "union" if isinstance(parsed, list) else str(parsed)


def _parse(schema: Any) -> tuple[Any, dict[str, Any]]:
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(schema, named)
    return parsed, named


# -- reader -------------------------------------------------------------------------------------------------

_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint starting at ``pos`` (any length up to 10 bytes); the value and the next position."""
    number = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    if number >> 64:
        raise ValueError("varint does not fit in 64 bits")
    return (number >> 1) ^ -(number & 1), pos


def _short_read(wanted: int, pos: int, size: int) -> EOFError:
    return EOFError(f"expected {wanted} bytes at offset {pos}, {max(size - pos, 0)} left")


def _bad_index(index: int, what: str) -> ValueError:
    return ValueError(f"{what} index {index} out of range")


class _ReaderGenerator(_SchemaGenerator):
    """Emits ``read(data, pos) -> (value, end)`` decoding one value of a writer schema."""

    def __init__(self, parsed: Any, named: dict[str, Any]) -> None:
        super().__init__(
            parsed,
            named,
            {
                "RL": _read_long,
                "UD": _UNPACK_DOUBLE,
                "UF": _UNPACK_FLOAT,
                "SHORT": _short_read,
                "BADIDX": _bad_index,
                "len": len,
                "range": range,
            },
        )

    def source(self) -> str:
        self.emit(0, "def read(data, pos):")
        self.emit(1, "size = len(data)")
        result = self.value(1, self.parsed)
        self.emit(1, f"return {result}, pos")
        return "\n".join(self.lines) + "\n"

    def long(self, indent: int) -> str:
        x, c = self.var("x"), self.var("c")
        self.emit(indent, f"{c} = data[pos]")
        self.emit(indent, f"if {c} < 128:")
        self.emit(indent + 1, "pos += 1")
        self.emit(indent + 1, f"{x} = ({c} >> 1) ^ -({c} & 1)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{x}, pos = RL(data, pos)")
        return x

    def raw(self, indent: int, length: str) -> str:
        x, end = self.var("x"), self.var("e")
        self.emit(indent, f"{end} = pos + {length}")
        self.emit(indent, f"if {length} < 0 or {end} > size:")
        self.emit(indent + 1, f"raise SHORT({length}, pos, size)")
        self.emit(indent, f"{x} = data[pos:{end}]")
        self.emit(indent, f"pos = {end}")
        return x

    def value(self, indent: int, schema: Any) -> str:
        """Emit code reading one value; returns the local holding it."""
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named or schema in self.stack:
                raise UnsupportedSchema(f"named type {schema} (unknown or recursive)")
            schema = self.named[schema]
        x = self.plain(indent, schema)
        if isinstance(schema, dict):
            logical = extract_logical_type(schema)
            convert = LOGICAL_READERS.get(logical) if logical else None
            if convert is not None:
                self.emit(indent, f"{x} = {self.const(convert, 'L')}({x}, {self.const(schema, 'S')}, None)")
        return x

    def plain(self, indent: int, schema: Any) -> str:
        kind = extract_record_type(schema)
        if kind == "null":
            x = self.var("x")
            self.emit(indent, f"{x} = None")
            return x
        if kind == "boolean":
            x = self.var("x")
            self.emit(indent, f"{x} = data[pos] != 0")
            self.emit(indent, "pos += 1")
            return x
        if kind in ("int", "long"):
            return self.long(indent)
        if kind in ("float", "double"):
            x = self.var("x")
            width, unpack = (4, "UF") if kind == "float" else (8, "UD")
            self.emit(indent, f"{x} = {unpack}(data, pos)[0]")
            self.emit(indent, f"pos += {width}")
            return x
        if kind in ("bytes", "string"):
            n = self.long(indent)
            x = self.raw(indent, n)
            if kind == "string":
                self.emit(indent, f"{x} = {x}.decode()")
            return x
        if kind == "fixed":
            return self.raw(indent, str(int(schema["size"])))
        if kind == "enum":
            symbols = list(schema["symbols"])
            i, x = self.long(indent), self.var("x")
            self.emit(indent, f"if {i} < 0:")
            self.emit(indent + 1, f"raise BADIDX({i}, 'enum')")
            self.emit(indent, f"{x} = {self.const(symbols, 'SY')}[{i}]")
            return x
        if kind == "array":
            return self.blocks(indent, schema["items"], keyed=False)
        if kind == "map":
            return self.blocks(indent, schema["values"], keyed=True)
        if kind == "record":
            self.stack.append(schema.get("name", ""))
            items = [(field["name"], self.value(indent, field["type"])) for field in schema["fields"]]
            self.stack.pop()
            x = self.var("x")
            self.emit(indent, f"{x} = {{{', '.join(f'{name!r}: {local}' for name, local in items)}}}")
            return x
        if kind == "union":
            i, x = self.long(indent), self.var("x")
            for index, branch in enumerate(schema):
                self.emit(indent, f"{'if' if index == 0 else 'elif'} {i} == {index}:")
                got = self.value(indent + 1, branch)
                self.emit(indent + 1, f"{x} = {got}")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"raise BADIDX({i}, 'union')")
            return x
        raise UnsupportedSchema(f"type {kind!r}")

    def blocks(self, indent: int, item_schema: Any, keyed: bool) -> str:
        x, item = self.var("x"), self.var("i")
        self.emit(indent, f"{x} = {{}}" if keyed else f"{x} = []")
        count = self.long(indent)
        self.emit(indent, f"while {count} != 0:")
        self.emit(indent + 1, f"if {count} < 0:")
        self.emit(indent + 2, f"{count} = -{count}")
        self.long(indent + 2)  # the block's size in bytes, unused
        self.emit(indent + 1, f"for {item} in range({count}):")
        if keyed:
            n = self.long(indent + 2)
            key = self.raw(indent + 2, n)
            self.emit(indent + 2, f"{key} = {key}.decode()")
            got = self.value(indent + 2, item_schema)
            self.emit(indent + 2, f"{x}[{key}] = {got}")
        else:
            got = self.value(indent + 2, item_schema)
            self.emit(indent + 2, f"{x}.append({got})")
        next_count = self.long(indent + 1)
        self.emit(indent + 1, f"{count} = {next_count}")
        return x


class CompiledReader:
    """A writer schema's reader: ``read(data, pos) -> (value, end)`` decodes one value starting at ``pos``."""

    def __init__(self, read: Callable[[bytes, int], tuple[Any, int]], source: str) -> None:
        self.read = read
        self.source = source


_reader_cache: dict[int, tuple[Any, CompiledReader | None]] = {}


def reader_for(parsed_writer_schema: Any) -> CompiledReader | None:
    """The compiled reader of a writer schema, built once per schema object; None when the schema needs
    fastavro (recursive named types, types the generator does not handle)."""
    key = id(parsed_writer_schema)
    entry = _reader_cache.get(key)
    if entry is not None and entry[0] is parsed_writer_schema:
        return entry[1]
    parsed, named = _parse(parsed_writer_schema)
    built: CompiledReader | None
    try:
        generator = _ReaderGenerator(parsed, named)
        source = generator.source()
        namespace = dict(generator.namespace)
        exec(compile(source, f"<avro reader {_schema_label(parsed)}>", "exec"), namespace)
        built = CompiledReader(namespace["read"], source)
    except Exception as error:  # anything the generator cannot express is read by fastavro, loudly
        log.warning(
            "schema %s: no generated reader (%s); fastavro's schemaless reader reads it", _schema_label(parsed), error
        )
        built = None
    with _cache_lock:
        _reader_cache[key] = (parsed_writer_schema, built)
    return built


def compile_reader(parsed_writer_schema: Any) -> Callable[[bytes], Any] | None:
    """``read(body) -> value``: decodes a whole Avro binary body as ``fastavro.schemaless_reader`` does without
    a reader schema (same values, logical types converted by fastavro's ``LOGICAL_READERS``); raises on
    trailing bytes. None when the schema needs fastavro."""
    compiled = reader_for(parsed_writer_schema)
    if compiled is None:
        return None
    read = compiled.read

    def read_body(body: bytes) -> Any:
        value, end = read(body, 0)
        if end != len(body):
            raise ValueError(f"{len(body) - end} trailing bytes")
        return value

    return read_body


_cache: dict[int, tuple[Any, CompiledWriter]] = {}
_cache_lock = threading.Lock()


def writer_for(parsed_schema: Any) -> CompiledWriter:
    """The compiled writer of ``parsed_schema`` (a schema parsed by ``fastavro.parse_schema``; raw schemas are
    parsed first), built once per schema object."""
    key = id(parsed_schema)
    entry = _cache.get(key)
    if entry is not None and entry[0] is parsed_schema:
        return entry[1]
    parsed, named = _parse(parsed_schema)
    try:
        built = _generate(parsed, named)
    except Exception as error:  # anything the generator cannot express is written by fastavro, loudly
        log.warning(
            "schema %s: no generated writer (%s); fastavro's schemaless writer writes it", _schema_label(parsed), error
        )
        built = _fallback(parsed)
    with _cache_lock:
        _cache[key] = (parsed_schema, built)  # the strong reference keeps the id from being reused
    return built


def compile_writer(parsed_schema: Any) -> Callable[[Record], bytes]:
    """``write(record) -> bytes``: the Avro binary encoding of ``record``, byte for byte as fastavro writes it."""
    return writer_for(parsed_schema).write


def generated_source(parsed_schema: Any) -> str | None:
    """The generated Python source of a schema's writer (None when it falls back to fastavro)."""
    return writer_for(parsed_schema).source
