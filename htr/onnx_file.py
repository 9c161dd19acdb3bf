"""The checksum and metadata of an ONNX file written by htr, read from its bytes without importing ``onnx``.

``python -m htr.export`` (and the ``CKPT.onnx`` cache of the onnxruntime backend) records in the file's metadata
``model_sha256``: the SHA-256 of every top-level field of the ONNX ``ModelProto`` (the graph with its weights, the
opset, the other metadata) except that entry itself. Loading checks it, so flipped bytes in a weight give one
error instead of a model that reads garbage; files exported before htr recorded it load unchecked.

Why a hand-written reader of the protobuf wire format instead of ``onnx.load``: ``import onnx`` plus parsing
the whole graph in Python would add a sizeable share to a cold ``recognize`` of one line, which does not even
import PyTorch; the top level of a ``ModelProto`` is a handful of fields, walked here in a few lines, and the
hash then runs over the file's bytes as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from htr.errors import CheckpointError

CHECKSUM_KEY = "model_sha256"
_METADATA_FIELD = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {1: key, 2: value}


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("a varint runs past the end")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data: memoryview) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, start, value start, end)`` of each field of one protobuf message, in file order."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        wire = tag & 7
        if wire == 0:
            _, end = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            end = pos + size
        elif wire in (1, 5):
            end = pos + (8 if wire == 1 else 4)
        else:  # groups (3, 4) are not used by ONNX
            raise ValueError(f"wire type {wire}")
        if end > len(data) or tag >> 3 == 0:
            raise ValueError("a field runs past the end")
        yield tag >> 3, start, pos, end
        pos = end


def _entry(data: memoryview) -> tuple[str, str]:
    """The key and value of a metadata entry."""
    kv = {n: bytes(data[v:e]).decode() for n, _, v, e in _fields(data) if n in (1, 2)}
    return kv.get(1, ""), kv.get(2, "")


def read_metadata(data: bytes) -> tuple[dict[str, str], str]:
    """``(metadata, sha256)``: the raw ``metadata_props`` of an ONNX file's bytes and the SHA-256 of all its
    top-level fields except the ``model_sha256`` entry. Raises ValueError when the bytes are not a protobuf."""
    view, h, meta = memoryview(data), hashlib.sha256(), {}
    for number, start, value, end in _fields(view):
        if number == _METADATA_FIELD:
            key, text = _entry(view[value:end])
            meta[key] = text
            if key == CHECKSUM_KEY:
                continue
        h.update(view[start:end])
    return meta, h.hexdigest()


def stamped(data: bytes) -> dict[str, str]:
    """The metadata entry that records ``data``'s checksum (add it to the model last, then serialize again)."""
    return {CHECKSUM_KEY: json.dumps(read_metadata(data)[1])}


def checked_bytes(source: str | Path | bytes, path: Path) -> tuple[bytes, dict[str, str]]:
    """The bytes of an ONNX file and its raw metadata, after checking the recorded checksum if there is one."""
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise CheckpointError(f"model file cannot be read ({e.strerror})", path) from None
    try:
        meta, digest = read_metadata(data)
    except ValueError:  # UnicodeDecodeError included
        raise CheckpointError("not a readable ONNX model (its bytes are not an ONNX protobuf)", path) from None
    if CHECKSUM_KEY in meta and meta[CHECKSUM_KEY] != json.dumps(digest):
        raise CheckpointError(
            "the model does not match the checksum recorded when it was exported: the file is damaged", path
        )
    return data, meta
