"""SHA-256 fingerprints of a generation's inputs and of a model's weights, for its manifest."""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["input_digest", "sha256_file", "weights_sha256"]

_CHUNK = 1 << 20
# (weak references to the tensors, their names and versions, the digest), newest last.
_WEIGHTS_CACHE: list[tuple[list[weakref.ref[torch.Tensor]], tuple[Any, ...], str]] = []
_CACHE_LOCK = threading.Lock()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read 1 MiB at a time (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def input_digest(value: Any) -> dict[str, str]:
    """SHA-256 of one generation input, and what was hashed.

    Parameters
    ----------
    value
        A path (its file's bytes are hashed, so ``sha256sum FILE`` gives the same
        value), a numpy array or torch tensor (its dtype, shape and bytes), a PIL
        image (its mode, size and pixels) or bytes.

    Returns
    -------
    dict
        ``{"sha256": hex, "of": "file bytes" | "array ..." | "image ..." | "bytes"}``.
    """
    if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().is_file():
        return {"sha256": sha256_file(Path(value).expanduser()), "of": "file bytes"}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"sha256": hashlib.sha256(value).hexdigest(), "of": "bytes"}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if not value.is_floating_point() or value.dtype in (torch.float32, torch.float64):
            value = value.numpy()
        else:
            value = value.float().numpy()
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
        return {"sha256": digest.hexdigest(), "of": f"array {array.dtype} {tuple(array.shape)}"}
    tobytes = getattr(value, "tobytes", None)
    if callable(tobytes) and hasattr(value, "mode") and hasattr(value, "size"):
        digest = hashlib.sha256(f"{value.mode}{tuple(value.size)}".encode())
        digest.update(tobytes())
        return {"sha256": digest.hexdigest(), "of": f"image {value.mode} {tuple(value.size)}"}
    return {"sha256": hashlib.sha256(repr(value).encode()).hexdigest(), "of": "repr"}


def _tensors(modules: Iterable[tuple[str, torch.nn.Module]]) -> list[tuple[str, torch.Tensor]]:
    return [
        (f"{prefix}.{name}", tensor)
        for prefix, module in modules
        for name, tensor in module.state_dict(keep_vars=True).items()
    ]


def weights_sha256(modules: Iterable[tuple[str, torch.nn.Module]]) -> str | None:
    """SHA-256 over the weights of named modules, as they are (names, dtypes, shapes, bytes).

    The value depends on the dtype the model runs in (float32 and bfloat16 copies of
    the same model differ). It is cached while the very same tensors are alive and
    unchanged (their in-place version counters), so repeated generations with one
    model do not hash again.

    Returns
    -------
    str or None
        The hex digest, or ``None`` for weights on the meta device (no data).
    """
    tensors = sorted(_tensors(modules), key=lambda item: item[0])
    if any(t.is_meta for _, t in tensors):
        return None
    versions = tuple((name, t._version, t.dtype, str(t.device)) for name, t in tensors)
    with _CACHE_LOCK:
        for refs, seen, value in _WEIGHTS_CACHE:
            if seen == versions and all(
                ref() is tensor for ref, (_, tensor) in zip(refs, tensors, strict=True)
            ):
                return value
    digest = hashlib.sha256()
    for name, tensor in tensors:
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        if data.numel():
            digest.update(data.reshape(-1).view(torch.uint8).numpy().data)
    value = digest.hexdigest()
    with _CACHE_LOCK:
        _WEIGHTS_CACHE.append(([weakref.ref(t) for _, t in tensors], versions, value))
        del _WEIGHTS_CACHE[:-4]
    return value
