"""Resizing the decoded frames to the written size (``PipelineSettings.output_size``).

A small model generates small frames (the bundled demo model: 64 or 96 pixels). The
invisible watermark (:mod:`emo.provenance.watermark`) lives in wavelengths of 3 to 16
pixels of 64-pixel tiles: in frames of fewer than about 192-256 pixels a re-encode
(H.264 at CRF 28) removes it. Upscaling the decoded frames *before* the mark is
embedded gives it the pixels it needs, and the written video carries it at that size
(the provenance guide has the measurements).

Method: bicubic interpolation (Keys' cubic convolution, ``a = -0.75``) by
:func:`torch.nn.functional.interpolate` with ``align_corners=False`` and
``antialias=True`` (which only matters when shrinking: the kernel is then widened to
the output's pixel spacing), on the decoded floats in ``[-1, 1]`` on the VAE's device,
clamped back to ``[-1, 1]`` (bicubic overshoots at edges) before rounding to uint8, so
the frames are quantised once. It adds no detail: an upscaled 64-pixel video looks like
a 64-pixel video viewed larger.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emo.errors import InputError

__all__ = ["NATIVE", "resize_frames", "written_frame_size"]

#: The ``output_size`` value (per call, on the command line) that writes the generated size.
NATIVE = "native"


def written_frame_size(height: int, width: int, output_size: int | None) -> tuple[int, int]:
    """``(height, width)`` of the frames written for a ``height x width`` generation.

    Parameters
    ----------
    height, width
        The generated (decoded) size.
    output_size
        The shorter side of the written frames (the longer one keeps the aspect, rounded
        to whole pixels), or ``None``: the generated size.

    Returns
    -------
    tuple of int
        The written ``(height, width)``.

    Raises
    ------
    InputError
        If ``output_size`` is not ``None`` or a positive int.
    """
    if output_size is None:
        return height, width
    if isinstance(output_size, bool) or not isinstance(output_size, int) or output_size <= 0:
        raise InputError(f"output_size must be a positive int or None, got {output_size!r}")
    short = min(height, width)
    if height == width:
        return output_size, output_size
    if height < width:
        return output_size, max(1, round(width * output_size / short))
    return max(1, round(height * output_size / short)), output_size


def resize_frames(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float frames ``(f, c, h, w)`` in ``[-1, 1]`` to ``size`` (bicubic, antialiased).

    Parameters
    ----------
    pixels
        Decoded frames, any float dtype, on any device.
    size
        ``(height, width)`` to write.

    Returns
    -------
    torch.Tensor
        float32 ``(f, c, height, width)`` clamped to ``[-1, 1]`` on the same device; the
        input itself when it already has that size.
    """
    if tuple(pixels.shape[-2:]) == tuple(size):
        return pixels
    resized = F.interpolate(
        pixels.float(), size=size, mode="bicubic", align_corners=False, antialias=True
    )
    return resized.clamp_(-1.0, 1.0)
