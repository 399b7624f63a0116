"""Validation of Avro binary bodies against their writer schema, without decoding them.

``validator_for(parsed_writer_schema)`` returns a function ``check(data, pos=0)`` that walks the body starting at
``pos`` and running to the end of ``data`` (so a wire-format payload is checked in place, header skipped) and
raises ``InvalidBody`` unless the bytes are exactly one value of the schema. It builds no Python values: it
checks varints (at most 5 bytes for ``int``, 10 for ``long``, within 32/64 bits), lengths within the body,
union and enum indexes in range, booleans 0 or 1, UTF-8 strings, the values fastavro's logical-type readers
accept (uuid strings, timestamps and dates within the calendar, times within the day), and that the whole body
is consumed. The checking code is Python source generated once per writer schema (cached per schema object).

Every body ``fastavro.schemaless_reader`` rejects is rejected, and a few it silently accepts: negative union or
enum indexes, varints beyond 64 bits, ``int`` values beyond 32 bits, booleans other than 0 and 1, and trailing
bytes. Every body fastavro writes for a valid record is accepted. Recursive named types are checked by one
generated function per recursive type.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import fastavro
from fastavro.read import LOGICAL_READERS
from fastavro.schema import extract_logical_type, extract_record_type

from schemas.loader import PRIMITIVES
from services.common.avro_codegen import SourceEmitter
from services.common.serde import UndecodableRecord

__all__ = ["InvalidBody", "Validator", "generated_source", "metadata_validator_for", "validator_for"]

Validator = Callable[..., None]

# Longest block of zero-width items (e.g. an array of nulls) accepted: such items take no bytes, so a corrupt count
# would make readers build billions of them.
MAX_EMPTY_ITEMS = 1 << 20

# Canonical UUID text is always what fastavro's uuid reader accepts; other spellings are handed to it.
_CANONICAL_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Values of logical types inside these ranges always convert; values outside are handed to fastavro's reader,
# which decides (and whose failure rejects the body).
_MS_PER_DAY = 86_400_000
_SAFE_RANGES: dict[str, tuple[int, int]] = {
    # 1900-01-01 .. 9000-01-01 (fastavro builds datetimes: years 1..9999)
    "long-timestamp-millis": (-2_208_988_800_000, 221_845_392_000_000),
    "long-local-timestamp-millis": (-2_208_988_800_000, 221_845_392_000_000),
    "long-timestamp-micros": (-2_208_988_800_000_000, 221_845_392_000_000_000),
    "long-local-timestamp-micros": (-2_208_988_800_000_000, 221_845_392_000_000_000),
    "int-date": (-25_567, 2_567_632),
    "int-time-millis": (0, _MS_PER_DAY - 1),
    "long-time-micros": (0, _MS_PER_DAY * 1000 - 1),
}


class InvalidBody(UndecodableRecord):
    """The bytes are not one value of the writer schema."""


class _Unsupported(Exception):
    pass


def _truncated(what: str, pos: int) -> InvalidBody:
    return InvalidBody(f"truncated body: {what} at offset {pos} runs past the end")


def _bad(what: str, value: Any, pos: int) -> InvalidBody:
    return InvalidBody(f"{what} {value} at offset {pos} out of range")


def _varint(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    """The zig-zag varint starting at ``pos`` (at most ``limit`` bytes: 5 for ``int``, 10 for ``long``, within 32
    or 64 bits) and the position after it."""
    number = 0
    shift = 0
    start = pos
    while True:
        byte = data[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if pos - start >= limit:
            raise InvalidBody(f"varint at offset {start} longer than {limit} bytes")
    if number >> (64 if limit == 10 else 32):
        raise InvalidBody(f"varint at offset {start} exceeds {64 if limit == 10 else 32} bits")
    return (number >> 1) ^ -(number & 1), pos


def _varint_end(data: bytes, pos: int, limit: int) -> int:
    """The position after the varint starting at ``pos`` (checked as ``_varint`` does); unrolled for speed."""
    if data[pos + 1] < 0x80:
        return pos + 2
    if data[pos + 2] < 0x80:
        return pos + 3
    if data[pos + 3] < 0x80:
        return pos + 4
    if limit == 10:
        if data[pos + 4] < 0x80:
            return pos + 5
        if data[pos + 5] < 0x80:
            return pos + 6
        if data[pos + 6] < 0x80:
            return pos + 7
        if data[pos + 7] < 0x80:
            return pos + 8
    return _varint(data, pos, limit)[1]


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag ``long`` varint starting at ``pos`` and the position after it; unrolled up to 7 bytes."""
    byte = data[pos]
    number = byte & 0x7F
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 1
    byte = data[pos + 1]
    number |= (byte & 0x7F) << 7
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 2
    byte = data[pos + 2]
    number |= (byte & 0x7F) << 14
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 3
    byte = data[pos + 3]
    number |= (byte & 0x7F) << 21
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 4
    byte = data[pos + 4]
    number |= (byte & 0x7F) << 28
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 5
    byte = data[pos + 5]
    number |= (byte & 0x7F) << 35
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 6
    byte = data[pos + 6]
    number |= (byte & 0x7F) << 42
    if byte < 0x80:
        return (number >> 1) ^ -(number & 1), pos + 7
    return _varint(data, pos, 10)


def _index(data: bytes, pos: int) -> tuple[int, int]:
    """A union or enum index of more than one byte, as its single-byte zig-zag form (2 * index, or 1 when
    negative), and the position after it."""
    index, pos = _varint(data, pos, 5)
    return (2 * index if index >= 0 else 1), pos


def _span(data: bytes, pos: int, size: int, what: str) -> tuple[int, int]:
    """A length-prefixed span whose length takes more than one byte: (start, end) within the body."""
    length, start = _varint(data, pos, 10)
    end = start + length
    if length < 0 or end > size:
        raise _truncated(f"{what} of {length} bytes", pos)
    return start, end


def _string(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode()
    except UnicodeDecodeError as error:
        raise InvalidBody(f"string at offset {start} is not UTF-8: {error.reason}") from error


def _check_uuid(data: bytes, start: int, end: int, schema: Any) -> None:
    if _CANONICAL_UUID.fullmatch(data, start, end) is not None:
        return
    try:
        LOGICAL_READERS["string-uuid"](data[start:end].decode(), schema, None)
    except Exception as error:
        raise InvalidBody(f"uuid at offset {start} does not read: {error!r}") from error


def _check_logical(value: int, pos: int, logical: str, schema: Any) -> None:
    try:
        LOGICAL_READERS[logical](value, schema, None)
    except Exception as error:
        raise InvalidBody(f"{logical} value {value} at offset {pos} does not read: {error!r}") from error


def _check_logical_at(data: bytes, pos: int, limit: int, logical: str, schema: Any) -> None:
    value = _varint(data, pos, limit)[0]
    low, high = _SAFE_RANGES[logical]
    if not low <= value <= high:
        _check_logical(value, pos, logical, schema)


def _safe_bytes(logical: str) -> int:
    """The longest varint (in bytes) whose every value lies in the logical type's safe range (0: none)."""
    low, high = _SAFE_RANGES[logical]
    length = 0
    while length < 10 and -(1 << (7 * (length + 1) - 1)) >= low and (1 << (7 * (length + 1) - 1)) - 1 <= high:
        length += 1
    return length


class _Generator(SourceEmitter):
    """Emits ``check_value(data, pos, size) -> pos`` walking one value of a writer schema (``pos`` always points
    at the next byte to read)."""

    def __init__(self, named: dict[str, Any], capture: tuple[tuple[str, ...], ...] = ()) -> None:
        super().__init__(
            {
                "InvalidBody": InvalidBody,
                "TRUNC": _truncated,
                "BAD": _bad,
                "VAR": _varint,
                "LONG": _long,
                "END": _varint_end,
                "IDX": _index,
                "SPAN": _span,
                "UTF8": _string,  # the decoded string is dropped: only its UTF-8 check counts
                "STR": _string,
                "UUID": _check_uuid,
                "LOGICAL": _check_logical,
                "LOGICAL_AT": _check_logical_at,
                "range": range,
            }
        )
        self.named = named
        # field paths (from the top record) whose values the walk returns, each in a local ``cap<i>``
        self.capture = {path: f"cap{i}" for i, path in enumerate(capture)}
        self.path: list[str] = []
        self.stack: list[str] = []  # named types being inlined (a reference to one of them recurses)
        self.functions: dict[str, str] = {}  # named type -> function checking it (recursive types only)
        self.pending: list[str] = []

    # -- entry points -------------------------------------------------------------------------------------
    def function(self, fname: str, schema: Any, top: bool = False) -> None:
        self.emit(0, f"def {fname}(data, pos, size):")
        self.emit(1, "pass")
        self.value(1, schema)
        if top and self.capture:
            self.emit(1, f"return pos, {', '.join(self.capture.values())}")
        else:
            self.emit(1, "return pos")
        self.emit(0, "")

    def source(self, parsed: Any) -> str:
        self.function("check_value", parsed, top=True)
        self.capture = {}
        done: set[str] = set()
        while self.pending:
            name = self.pending.pop()
            if name in done:
                continue
            done.add(name)
            self.stack = [name]
            self.function(self.functions[name], self.named[name])
        return "\n".join(self.lines) + "\n"

    # -- pieces -------------------------------------------------------------------------------------------
    def skip_long(self, indent: int, limit: int) -> None:
        self.emit(indent, "if data[pos] < 128:")
        self.emit(indent + 1, "pos += 1")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"pos = END(data, pos, {limit})")

    def index(self, indent: int) -> str:
        """A union or enum index in its zig-zag form (2 * index; odd when negative)."""
        c = self.var("c")
        self.emit(indent, f"{c} = data[pos]")
        self.emit(indent, f"if {c} < 128:")
        self.emit(indent + 1, "pos += 1")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{c}, pos = IDX(data, pos)")
        return c

    def span(self, indent: int, what: str) -> str:
        """A length-prefixed span: checks it fits and moves ``pos`` past it; returns the local of its start."""
        n, start = self.var("n"), self.var("s")
        self.emit(indent, f"{n} = data[pos]")
        self.emit(indent, f"if {n} < 128:")
        self.emit(indent + 1, f"{start} = pos + 1")
        self.emit(indent + 1, f"pos = {start} + ({n} >> 1)")
        self.emit(indent + 1, f"if {n} & 1 or pos > size:")
        self.emit(indent + 2, f"raise TRUNC({what!r}, {start} - 1)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{start}, pos = SPAN(data, pos, size, {what!r})")
        return start

    def value(self, indent: int, schema: Any) -> None:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise _Unsupported(f"unknown named type {schema}")
            if schema in self.stack:
                fname = self.functions.get(schema)
                if fname is None:
                    fname = self.functions[schema] = self.var("named_")
                    self.pending.append(schema)
                self.emit(indent, f"pos = {fname}(data, pos, size)")
                return
            schema = self.named[schema]
        kind = extract_record_type(schema)
        logical = extract_logical_type(schema) if isinstance(schema, dict) else None
        captured = self.capture.get(tuple(self.path))
        if kind == "null":
            return
        if kind == "boolean":
            self.emit(indent, "if data[pos] > 1:")
            self.emit(indent + 1, "raise BAD('boolean', data[pos], pos)")
            self.emit(indent, "pos += 1")
            return
        if kind in ("int", "long"):
            limit = 5 if kind == "int" else 10
            checked = logical in _SAFE_RANGES and logical in LOGICAL_READERS
            if captured is not None or (checked and _safe_bytes(str(logical)) == 0):
                x, start = self.var("x"), self.var("p")
                self.emit(indent, f"{start} = pos")
                if limit == 10:
                    self.emit(indent, f"{x}, pos = LONG(data, pos)")
                else:
                    self.emit(indent, f"{x}, pos = VAR(data, pos, {limit})")
                if checked:
                    low, high = _SAFE_RANGES[str(logical)]
                    self.emit(indent, f"if not {low} <= {x} <= {high}:")
                    self.emit(indent + 1, f"LOGICAL({x}, {start}, {logical!r}, {self.const(schema)})")
                if captured is not None:
                    self.emit(indent, f"{captured} = {x}")
                return
            if not checked:
                self.skip_long(indent, limit)
                return
            start = self.var("p")
            self.emit(indent, f"{start} = pos")
            self.skip_long(indent, limit)
            self.emit(indent, f"if pos - {start} > {_safe_bytes(str(logical))}:")
            self.emit(indent + 1, f"LOGICAL_AT(data, {start}, {limit}, {logical!r}, {self.const(schema)})")
            return
        if kind in ("float", "double", "fixed"):
            # no bounds check here: a body that ends early fails at the next read or at the final position check
            width = {"float": 4, "double": 8}.get(kind) or int(schema["size"])
            if width:
                self.emit(indent, f"pos += {width}")
            return
        if kind == "bytes":
            self.span(indent, "bytes")
            return
        if kind == "string":
            start = self.span(indent, "string")
            if logical == "string-uuid":
                self.emit(indent, f"UUID(data, {start}, pos, {self.const(schema)})")
                if captured is not None:
                    self.emit(indent, f"{captured} = data[{start}:pos].decode()")
            elif captured is not None:
                self.emit(indent, f"{captured} = STR(data, {start}, pos)")
            else:
                self.emit(indent, f"if not data[{start}:pos].isascii():")
                self.emit(indent + 1, f"UTF8(data, {start}, pos)")
            return
        if kind == "enum":
            count = len(schema["symbols"])
            c = self.index(indent)
            self.emit(indent, f"if {c} & 1 or {c} >= {2 * count}:")
            self.emit(indent + 1, f"raise BAD('enum index', ({c} >> 1) ^ -({c} & 1), pos)")
            return
        if kind == "array":
            self.blocks(indent, schema["items"], keyed=False)
            return
        if kind == "map":
            self.blocks(indent, schema["values"], keyed=True)
            return
        if kind == "record":
            name = schema.get("name", "")
            self.stack.append(name)
            for field in schema["fields"]:
                self.path.append(field["name"])
                self.value(indent, field["type"])
                self.path.pop()
            self.stack.pop()
            return
        if kind == "union":
            c = self.index(indent)
            branches = [(index, branch) for index, branch in enumerate(schema) if not _is_null(branch)]
            nulls = [index for index, branch in enumerate(schema) if _is_null(branch)]
            for number, (index, branch) in enumerate(branches):
                self.emit(indent, f"{'if' if number == 0 else 'elif'} {c} == {2 * index}:")
                self.emit(indent + 1, "pass")
                self.value(indent + 1, branch)
            allowed = " or ".join(f"{c} == {2 * index}" for index in nulls) or "False"
            self.emit(indent, f"{'if' if not branches else 'elif'} not ({allowed}):")
            self.emit(indent + 1, f"raise BAD('union index', ({c} >> 1) ^ -({c} & 1), pos)")
            return
        raise _Unsupported(f"type {kind!r}")

    def blocks(self, indent: int, item_schema: Any, keyed: bool) -> None:
        count, block, start = self.var("n"), self.var("b"), self.var("p")
        self.emit(indent, f"{start} = pos")
        self.emit(indent, f"{count}, pos = VAR(data, pos, 10)")
        self.emit(indent, f"while {count} != 0:")
        self.emit(indent + 1, f"if {count} < 0:")
        self.emit(indent + 2, f"{count} = -{count}")
        self.emit(indent + 2, f"{block}, pos = VAR(data, pos, 10)")
        self.emit(indent + 2, f"if {block} < 0 or pos + {block} > size:")
        self.emit(indent + 3, f"raise TRUNC('block of ' + str({block}) + ' bytes', {start})")
        if not keyed and _zero_width(item_schema, self.named):
            # items of zero bytes: nothing to walk, but readers build every one of them
            self.emit(indent + 1, f"if {count} > {MAX_EMPTY_ITEMS}:")
            self.emit(indent + 2, f"raise BAD('count of zero-width items', {count}, {start})")
        else:
            # every item takes at least one byte: a count beyond the bytes left is a corrupt count
            self.emit(indent + 1, f"if {count} > size - pos:")
            self.emit(indent + 2, f"raise TRUNC(str({count}) + ' items', {start})")
            item = self.var("i")
            self.emit(indent + 1, f"for {item} in range({count}):")
            if keyed:
                key = self.span(indent + 2, "map key")
                self.emit(indent + 2, f"if not data[{key}:pos].isascii():")
                self.emit(indent + 3, f"UTF8(data, {key}, pos)")
            self.emit(indent + 2, "pass")
            saved, self.path = self.path, ["[]"]  # nothing inside a collection is captured
            self.value(indent + 2, item_schema)
            self.path = saved
        self.emit(indent + 1, f"{start} = pos")
        self.emit(indent + 1, f"{count}, pos = VAR(data, pos, 10)")


def _is_null(schema: Any) -> bool:
    return schema == "null" or (isinstance(schema, dict) and schema.get("type") == "null")


def _zero_width(schema: Any, named: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """True when every value of ``schema`` encodes to zero bytes (nulls, empty fixed, records of those)."""
    if isinstance(schema, str) and schema not in PRIMITIVES:
        if schema in seen or schema not in named:
            return False
        return _zero_width(named[schema], named, seen | {schema})
    kind = extract_record_type(schema)
    if kind == "null":
        return True
    if kind == "fixed":
        return int(schema["size"]) == 0
    if kind == "record":
        name = schema.get("name", "")
        return all(_zero_width(field["type"], named, seen | {name}) for field in schema["fields"])
    return False


METADATA_PREFIX: tuple[tuple[str, ...], ...] = (("metadata", "event_id"), ("metadata", "event_time"))

# ``check``: ``check_value`` from ``pos`` to the end of the body; with captured fields, returns their values.
_ENTRY = """
def check(data, pos=0):
    size = len(data)
    try:
        {walked} = check_value(data, pos, size)
    except IndexError:
        raise InvalidBody("truncated body: it ends inside a value") from None
    except RecursionError:
        raise InvalidBody("body nests deeper than the checker follows") from None
    if end != size:
        if end > size:
            raise InvalidBody("truncated body: it ends inside a value")
        raise InvalidBody(str(size - end) + " trailing bytes after the value")
{returned}"""


def _entry_source(capture: bool) -> str:
    if capture:
        return _ENTRY.format(walked="end, *captured", returned="    return captured\n")
    return _ENTRY.format(walked="end", returned="")


def _generate(parsed_writer_schema: Any, capture: tuple[tuple[str, ...], ...]) -> tuple[Callable[..., Any], str]:
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(parsed_writer_schema, named)
    generator = _Generator(named, capture)
    source = generator.source(parsed) + _entry_source(bool(capture))
    namespace = dict(generator.namespace)
    exec(compile(source, "<avro validator>", "exec"), namespace)
    return namespace["check"], source


_cache: dict[tuple[int, tuple[tuple[str, ...], ...]], tuple[Any, Callable[..., Any], str]] = {}
_lock = threading.Lock()


def _entry(parsed_writer_schema: Any, capture: tuple[tuple[str, ...], ...] = ()) -> tuple[Any, Callable[..., Any], str]:
    key = (id(parsed_writer_schema), capture)
    entry = _cache.get(key)
    if entry is not None and entry[0] is parsed_writer_schema:
        return entry
    try:
        check, source = _generate(parsed_writer_schema, capture)
    except _Unsupported as error:
        raise ValueError(f"cannot validate against this schema: {error}") from error
    entry = (parsed_writer_schema, check, source)
    with _lock:
        _cache[key] = entry  # the strong reference keeps the id from being reused
    return entry


def validator_for(parsed_writer_schema: Any) -> Validator:
    """``check(data, pos=0)``: raises ``InvalidBody`` unless ``data[pos:]`` is exactly one value of the writer
    schema. Generated once per schema object (a schema parsed by ``fastavro.parse_schema``; raw schemas are
    parsed first). Raises ``ValueError`` for a schema the generator does not handle."""
    return _entry(parsed_writer_schema)[1]


def metadata_validator_for(parsed_writer_schema: Any) -> Callable[..., tuple[str, int]]:
    """Like ``validator_for``, for a record schema whose first field is the ``metadata`` envelope starting with
    ``event_id`` (string) and ``event_time`` (long): ``check(data, pos=0)`` returns ``(event_id, event_time)``
    (epoch milliseconds) read on the way. The caller checks the schema's shape
    (``services.common.sinks.records.starts_with_metadata``)."""
    return _entry(parsed_writer_schema, METADATA_PREFIX)[1]


def generated_source(parsed_writer_schema: Any) -> str:
    """The generated Python source of a schema's validator."""
    return _entry(parsed_writer_schema)[2]
