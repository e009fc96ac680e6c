"""A quick reader and writer of flat Avro records: fields of ``double``, ``long``, ``int`` or
``string`` (and ``boolean``, written only), or unions of ``null`` with one of them (the
transaction's schema; the score's, whose two other unions are written when they are null).

fastavro's ``schemaless_reader`` and ``schemaless_writer`` set up a decoder or encoder and walk the
schema for every record; for a flat record these do the same work in a few Python steps, and the
reader takes a run of ``double`` fields (the transaction's 30) with one
:meth:`struct.Struct.unpack_from`. The reader reads only well-formed bodies the same way fastavro
does: a body it cannot read raises, and the caller then lets fastavro read it, so that what is wrong
with it is reported as fastavro reports it. The writer writes the bytes fastavro writes for values
of the field's own type, and gives None for any other record (a value of another type, a missing
field, a non-null value of a union it does not write): fastavro writes those.

>>> import io, fastavro
>>> schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
...     {"name": "id", "type": "string"}, {"name": "t", "type": "double"}, {"name": "x", "type": "double"},
...     {"name": "label", "type": ["null", "long"], "default": None}]})
>>> out = io.BytesIO()
>>> fastavro.schemaless_writer(out, schema, {"id": "tx-1", "t": 1.5, "x": -2.0, "label": 1})
>>> read = flat_reader(schema)
>>> read(out.getvalue(), 0)
({'id': 'tx-1', 't': 1.5, 'x': -2.0, 'label': 1}, 23)
>>> flat_reader(fastavro.parse_schema({"type": "record", "name": "A", "fields": [
...     {"name": "xs", "type": {"type": "array", "items": "double"}}]})) is None   # not flat
True
>>> write = flat_writer(schema)
>>> write({"id": "tx-1", "t": 1.5, "x": -2.0, "label": 1}) == out.getvalue()
True
>>> write({"id": "tx-1", "t": 1.5, "x": -2.0, "label": "1"}) is None   # not a long: fastavro's to write
True
"""
from __future__ import annotations

import struct
from typing import Any, Callable

_KINDS = {"double": "double", "long": "long", "int": "long", "string": "string"}
_WRITTEN = {**_KINDS, "boolean": "boolean"}
_DOUBLE = struct.Struct("<d")
_UNION_INDEX = (b"\x00", b"\x02")  # the zig-zag varints of 0 and 1

Reader = Callable[[bytes, int], tuple[dict, int]]


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag varint at ``pos`` and the position after it."""
    byte = data[pos]
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise EOFError("string past the end of the body")
    return data[pos:end].decode(), end


def _null_union(kind: Any) -> tuple[Any, int | None] | None:
    """A field's type as ``(type, index of null)``: ``(kind, None)`` for a type that is not a union,
    ``(the other branch, index of null)`` for a union of ``null`` with one type, and None for any
    other union (the reader and the writer leave those to fastavro).

    >>> _null_union("double"), _null_union(["null", "long"]), _null_union(["string", "null"])
    (('double', None), ('long', 0), ('string', 1))
    >>> _null_union(["null", "long", "string"]) is None
    True
    """
    if not isinstance(kind, list):
        return kind, None
    if len(kind) != 2 or "null" not in kind:
        return None
    null_index = kind.index("null")
    return kind[1 - null_index], null_index


def _steps(fields: list[dict]) -> list[tuple] | None:
    """The reading steps of a record's fields, or None if one is not flat."""
    steps: list[tuple] = []
    for field in fields:
        branches = _null_union(field["type"])
        if branches is None:
            return None
        kind, null_index = branches
        if not isinstance(kind, str) or kind not in _KINDS:
            return None
        kind = _KINDS[kind]
        if kind == "double" and null_index is None:
            if steps and steps[-1][0] == "doubles":
                steps[-1][1].append(field["name"])
            else:
                steps.append(("doubles", [field["name"]]))
        else:
            steps.append((kind, field["name"], null_index))
    return [("doubles", tuple(step[1]), struct.Struct(f"<{len(step[1])}d")) if step[0] == "doubles" else step
            for step in steps]


def flat_reader(schema: dict[str, Any]) -> Reader | None:
    """``read(data, pos) -> (record dict, position after it)`` for records of the parsed
    ``schema``, or None when it is not a flat record (then only fastavro reads it)."""
    if schema.get("type") != "record":
        return None
    steps = _steps(schema["fields"])
    if steps is None:
        return None

    def read(data: bytes, pos: int) -> tuple[dict, int]:
        out: dict = {}
        for step in steps:
            kind = step[0]
            if kind == "doubles":
                names, layout = step[1], step[2]
                out.update(zip(names, layout.unpack_from(data, pos)))
                pos += layout.size
                continue
            null_index = step[2]
            if null_index is not None:
                index, pos = _long(data, pos)
                if index == null_index:
                    out[step[1]] = None
                    continue
                if index != 1 - null_index:
                    raise IndexError(f"union index {index} of field {step[1]}")
            if kind == "long":
                out[step[1]], pos = _long(data, pos)
            elif kind == "string":
                out[step[1]], pos = _string(data, pos)
            else:  # double in a union
                out[step[1]], = struct.unpack_from("<d", data, pos)
                pos += 8
        return out, pos

    return read


def _put_long(out: bytearray, n: int) -> None:
    if not -(1 << 63) <= n < 1 << 63:
        raise OverflowError(f"{n} does not fit a long")
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def flat_writer(schema: dict[str, Any]) -> Callable[[dict], bytes | None] | None:
    """``write(record) -> body`` for records of the parsed ``schema`` (None for a record it leaves
    to fastavro), or None when a field is neither flat nor a union of ``null`` with anything."""
    if schema.get("type") != "record":
        return None
    steps = []
    for field in schema["fields"]:
        branches = _null_union(field["type"])
        if branches is None:
            return None
        kind, null_index = branches
        if null_index is not None:
            kind = _WRITTEN.get(kind) if isinstance(kind, str) else None  # None: written when null only
        elif isinstance(kind, str) and kind in _WRITTEN:
            kind = _WRITTEN[kind]
        else:
            return None
        steps.append((field["name"], kind, null_index))

    def write(record: dict) -> bytes | None:
        out = bytearray()
        try:
            for name, kind, null_index in steps:
                value = record[name]
                if null_index is not None:
                    if value is None:
                        out += _UNION_INDEX[null_index]
                        continue
                    if kind is None:
                        return None
                    out += _UNION_INDEX[1 - null_index]
                cls = value.__class__
                if kind == "double" and (cls is float or cls is int):
                    out += _DOUBLE.pack(value)
                elif kind == "long" and cls is int:
                    _put_long(out, value)
                elif kind == "string" and cls is str:
                    encoded = value.encode()
                    _put_long(out, len(encoded))
                    out += encoded
                elif kind == "boolean" and cls is bool:
                    out.append(1 if value else 0)
                else:
                    return None
        except (KeyError, OverflowError, UnicodeEncodeError):
            return None
        return bytes(out)

    return write
