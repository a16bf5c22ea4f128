"""Turn the many shapes an image or a clip comes in into uint8 RGB frames ``(f, h, w, 3)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from emo.errors import InputError

__all__ = ["as_rgb_frames", "to_numpy"]


def to_numpy(frames: Any, name: str) -> np.ndarray:
    """A numpy array or a (non-meta) torch tensor as a numpy array; anything else raises."""
    if isinstance(frames, np.ndarray):
        return frames
    try:  # torch is optional here: only a tensor the caller already holds is converted.
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency of emo
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(frames, torch.Tensor):
        if frames.is_meta:
            raise InputError(f"{name} are a tensor on the meta device (no data); pass real frames")
        return np.asarray(frames.detach().cpu().numpy())
    raise InputError(
        f"{name} must be a numpy array or torch tensor of uint8 frames (f, h, w, 3), "
        f"got {type(frames).__name__}"
    )


def as_rgb_frames(frames: Any, *, name: str = "frames") -> np.ndarray:
    """Validate frames and return them as contiguous uint8 RGB ``(f, h, w, 3)``.

    Parameters
    ----------
    frames
        numpy array or torch tensor, channels last, one of:

        - ``(f, h, w, c)``: a clip, ``c`` in {1, 3, 4};
        - ``(h, w, c)``: one image, ``c`` in {1, 3, 4};
        - ``(h, w)``: one grayscale image;
        - ``(f, h, w)`` with ``w`` not in {1, 3, 4}: a grayscale clip.

        uint8, or float with values in ``[0, 1]``. Grayscale is repeated to three channels;
        the alpha channel of RGBA is dropped (a face detector looks at the colour only).
    name
        What to call the input in error messages.

    Returns
    -------
    numpy.ndarray
        uint8 ``(f, h, w, 3)``.

    Raises
    ------
    InputError
        If the input is not an array of one of those shapes, is empty, holds NaN/inf,
        or has another dtype.
    """
    array = to_numpy(frames, name)
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim == 3:
        array = array[None] if array.shape[-1] in (1, 3, 4) else array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"{name} must have shape (f, h, w, 3), (h, w, 3), (h, w) or with 1 or 4 channels "
            f"(channels last), got {tuple(to_numpy(frames, name).shape)}"
        )
    if 0 in array.shape:
        raise InputError(f"{name} is empty (shape {tuple(array.shape)})")
    if array.dtype == np.bool_ or array.dtype.kind not in "uf":
        raise InputError(f"{name} must be uint8 or float in [0, 1], got dtype {array.dtype}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"{name} holds NaN or inf values")
        array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(
            f"{name} must be uint8 or float in [0, 1], got dtype {array.dtype}; "
            "convert with (x / x.max() * 255).astype('uint8')"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = array[..., :3]
    return np.ascontiguousarray(array)
