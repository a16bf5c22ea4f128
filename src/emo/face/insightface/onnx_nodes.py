"""The names of the first nodes of an ONNX model, read from the file's protobuf encoding.

insightface decides how to normalise a recognition model's input from the names of the
first eight nodes of its graph (see :mod:`emo.face.insightface.arcface`). onnxruntime does
not expose node names, and the ``onnx`` package is a large dependency for one list of
strings, so this module walks the protobuf wire format itself: ``ModelProto.graph``
(field 7) -> ``GraphProto.node`` (field 1, repeated, in graph order) ->
``NodeProto.name`` (field 3). Every other field, the weights included, is skipped without
being read.
"""

from __future__ import annotations

import os
from typing import BinaryIO

__all__ = ["first_node_names"]

_MODEL_GRAPH = 7
_GRAPH_NODE = 1
_NODE_NAME = 3
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class _Truncated(ValueError):
    """The file ends inside a field."""


def _varint(stream: BinaryIO) -> int | None:
    """The next base-128 varint, or ``None`` at the end of the stream."""
    value, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift == 0:
                return None
            raise _Truncated("the file ends inside a varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


def _fields(stream: BinaryIO, end: int) -> list[tuple[int, int, int, int]]:
    """``(field, wire type, value or offset, length)`` of a message up to ``end``.

    A varint gives its value and length 0; a length-delimited field gives the offset and
    length of its payload, which is skipped; fixed-width fields are skipped and not listed.
    """
    found = []
    while stream.tell() < end:
        key = _varint(stream)
        if key is None:
            raise _Truncated("the file ends inside a message")
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value = _varint(stream)
            if value is None:
                raise _Truncated("the file ends inside a varint")
            found.append((field, wire, value, 0))
        elif wire in (_FIXED64, _FIXED32):
            stream.seek(8 if wire == _FIXED64 else 4, os.SEEK_CUR)
        elif wire == _LENGTH:
            length = _varint(stream)
            if length is None:
                raise _Truncated("the file ends inside a length")
            start = stream.tell()
            found.append((field, wire, start, length))
            stream.seek(start + length)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    if stream.tell() != end:
        raise _Truncated("a field runs past the end of its message")
    return found


def _length_delimited(
    fields: list[tuple[int, int, int, int]], wanted: int
) -> list[tuple[int, int]]:
    """``(offset, length)`` of each length-delimited field number ``wanted``."""
    return [
        (start, length)
        for field, wire, start, length in fields
        if field == wanted and wire == _LENGTH
    ]


def first_node_names(path: str | os.PathLike[str], count: int = 8) -> list[str]:
    """The names of the first ``count`` nodes of the ONNX model at ``path``, in graph order.

    A node without a name gives ``""``.

    Raises
    ------
    ValueError
        If the file is not a protobuf-encoded ONNX model (no graph, a truncated field).
    OSError
        If the file cannot be read.
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        graphs = _length_delimited(_fields(stream, size), _MODEL_GRAPH)
        if not graphs:
            raise ValueError(f"{os.fspath(path)} holds no ONNX graph")
        start, length = graphs[-1]
        stream.seek(start)
        nodes = _length_delimited(_fields(stream, start + length), _GRAPH_NODE)
        names = []
        for node_start, node_length in nodes[:count]:
            stream.seek(node_start)
            name_spans = _length_delimited(_fields(stream, node_start + node_length), _NODE_NAME)
            name = ""
            if name_spans:
                name_start, name_length = name_spans[-1]
                stream.seek(name_start)
                name = stream.read(name_length).decode("utf-8", errors="replace")
            names.append(name)
        return names
