"""Reading and writing ``.safetensors`` files so that loaded weights need no copy.

emo writes its weights files with every tensor at a 64-byte aligned offset (the
header is padded with spaces, as the format allows, and the tensors whose size is
a multiple of 64 bytes come first): still plain safetensors files that any
safetensors reader reads. Loading such a file on the CPU maps it privately and
uses the tensors where they lie: no copy, peak memory the file's size once,
pages read from the page cache when first touched, and a write to a parameter
(training) copies that page only, never changing the file.

Alignment matters beyond speed: CPU kernels round differently on data that is not
64-byte aligned, so a model whose parameters sat at a file's arbitrary offsets
gave frames 1/255 away from the same model in memory. Tensors that are not
aligned in the file (files written by other tools or by older emo versions) are
therefore read into newly allocated (aligned) memory instead, one at a time.

On Windows a mapped file cannot be replaced while it is mapped, so everything is
read there; other devices get each tensor read and moved to them by safetensors.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch

from emo.errors import CheckpointError

__all__ = ["ALIGNMENT", "load_safetensors", "read_safetensors", "write_safetensors"]

#: Byte alignment of every tensor emo writes (what torch's CPU allocator gives).
ALIGNMENT = 64

#: safetensors dtype names -> torch dtypes (those this torch build has).
_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, attr)
    for name, attr in {
        "F64": "float64",
        "F32": "float32",
        "F16": "float16",
        "BF16": "bfloat16",
        "I64": "int64",
        "I32": "int32",
        "I16": "int16",
        "I8": "int8",
        "U8": "uint8",
        "U16": "uint16",
        "U32": "uint32",
        "U64": "uint64",
        "BOOL": "bool",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
        "C64": "complex64",
    }.items()
    if hasattr(torch, attr)
}
#: A header larger than this is not a safetensors file (the format's own limit).
_MAX_HEADER = 100_000_000


class _Entry(NamedTuple):
    """One tensor of a safetensors file: where its bytes are and what they are."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int  # offset from the start of the file
    nbytes: int


def _entries(file: io.FileIO, size: int) -> list[_Entry]:
    """The tensors of an open safetensors file, in file order; checks every entry."""
    raw = file.read(8)
    if len(raw) != 8:
        raise ValueError("shorter than a safetensors header")
    (length,) = struct.unpack("<Q", raw)
    if not 0 < length <= min(_MAX_HEADER, size - 8):
        raise ValueError(f"header length {length} does not fit a {size}-byte file")
    header = json.loads(file.read(length))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    start, data = 8 + length, size - 8 - length
    entries = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(str(entry.get("dtype")))
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if dtype is None:
            raise ValueError(f"tensor {name!r} has dtype {entry.get('dtype')!r}, unknown here")
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ValueError(f"tensor {name!r} has shape {shape!r}")
        nbytes = math.prod(shape) * dtype.itemsize
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(n, int) for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data
            and offsets[1] - offsets[0] == nbytes
        ):
            raise ValueError(f"tensor {name!r} has offsets {offsets!r} for {nbytes} bytes")
        entries.append(_Entry(str(name), dtype, tuple(shape), start + offsets[0], nbytes))
    return sorted(entries, key=lambda e: e.begin)


def _read_into(file: io.FileIO, entry: _Entry) -> torch.Tensor:
    """A new tensor holding ``entry``'s bytes, read straight into its memory."""
    tensor = torch.empty(entry.shape, dtype=entry.dtype)
    if not entry.nbytes:
        return tensor
    view = tensor.view(-1).view(torch.uint8).numpy().data
    file.seek(entry.begin)
    done = 0
    while done < entry.nbytes:  # readinto may return less than asked
        got = file.readinto(view[done:])
        if not got:
            raise ValueError(f"the file ends inside tensor {entry.name!r}")
        done += got
    return tensor


def _flat_bytes(tensor: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor, without a copy."""
    return tensor.reshape(-1).view(torch.uint8).numpy().data


def write_safetensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` as a safetensors file whose tensors lie at 64-byte aligned offsets.

    Parameters
    ----------
    tensors
        Contiguous CPU tensors by name.
    path
        The file to write (overwritten).
    metadata
        String pairs stored in the header's ``__metadata__``.
    """
    names = {v: k for k, v in _DTYPES.items()}
    # Tensors whose size is a multiple of the alignment first: each starts aligned.
    order = sorted(tensors, key=lambda k: _nbytes(tensors[k]) % ALIGNMENT != 0)
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name in order:
        tensor = tensors[name]
        size = _nbytes(tensor)
        header[name] = {
            "dtype": names[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-(8 + len(encoded)) % ALIGNMENT)  # the data starts aligned
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for name in order:
            if tensors[name].numel():
                file.write(_flat_bytes(tensors[name].detach().contiguous().cpu()))


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _open_entries(path: Path) -> tuple[io.FileIO, list[_Entry]]:
    file = open(path, "rb", buffering=0)  # noqa: SIM115 -- closed by the caller
    try:
        return file, _entries(file, os.fstat(file.fileno()).st_size)
    except BaseException:
        file.close()
        raise


def read_safetensors(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file tensor by tensor into newly allocated tensors.

    Each tensor's bytes are read from the file straight into its own memory (no
    map, no intermediate buffer); for another device each is read on the CPU and
    moved, one at a time.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated or not a safetensors file.
    """
    return _load(Path(path), torch.device(device), mapped=False)


def load_safetensors(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Load a ``.safetensors`` file: aligned tensors mapped in place, the others read.

    On the CPU (not on Windows) the file is mapped privately and every tensor that
    lies at an aligned offset is used where it lies; the rest are read into new
    memory (:func:`read_safetensors`). Other devices: safetensors reads each
    tensor onto the device.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated or not a safetensors file.
    """
    target = torch.device(device)
    mapped = target.type == "cpu" and os.name != "nt"
    return _load(Path(path), target, mapped=mapped)


def _load(path: Path, target: torch.device, *, mapped: bool) -> dict[str, torch.Tensor]:
    try:
        if sys.byteorder != "little" or target.type != "cpu":
            from safetensors.torch import load_file  # converts byte order; reads onto devices

            return dict(load_file(os.fspath(path), device=str(target)))
        file, entries = _open_entries(path)
        with file:
            views: Mapping[str, torch.Tensor] = {}
            if mapped:
                from safetensors.torch import load_file

                views = load_file(os.fspath(path))  # a private map: nothing read yet
            tensors: dict[str, torch.Tensor] = {}
            for entry in entries:
                view = views.get(entry.name)
                if view is not None and view.data_ptr() % ALIGNMENT == 0:
                    tensors[entry.name] = view
                else:
                    tensors[entry.name] = _read_into(file, entry)
            return tensors
    except Exception as exc:  # safetensors' own errors, OSError, a malformed header
        raise CheckpointError(f"cannot read weights file {os.fspath(path)!r}: {exc}") from exc
