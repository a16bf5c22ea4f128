"""EMO speed layers: head-rotation speed -> bucket encoding -> MLP embedding.

EMO conditions the temporal modules on how fast the head turns, so that clips
generated one after the other keep a consistent motion pace. The speed ``w`` of a
frame (the angular velocity of the head, in **degrees per frame**) is encoded against
``k`` buckets with centres ``c_i`` and radii ``r_i`` as

.. math::

    s_i = \\tanh\\left(3 \\, \\frac{w - c_i}{r_i}\\right), \\qquad i = 1 \\dots k,

a soft "thermometer" code in ``(-1, 1)``: ``s_i`` is close to ``+1`` when the speed
is well above bucket ``i``, close to ``-1`` when well below, and changes within about
one radius of the centre. As in the paper, the codes of the frames ``t-m .. t+m``
around each frame ``t`` are concatenated (``(b, f, (2m+1) k)``; ``m = 2`` by default)
and an MLP maps them to one embedding per frame ``(b, f, d)``, which the temporal
modules (:class:`emo.models.temporal.TemporalModule`) read through a cross-attention.
Frames beyond the clip's ends repeat the edge frame's speed, unless the caller passes
the real neighbouring speeds (``padded=True``).

Default buckets (degrees per frame, measured at 25 fps; 1 degree/frame = 25 degrees/s):

==========  =====  =====  =====  =====  =====  =====  =====  =====  =====
centre      0.0    0.1    0.2    0.35   0.5    0.75   1.0    1.5    2.5
radius      0.1    0.1    0.15   0.15   0.25   0.25   0.5    0.75   1.5
==========  =====  =====  =====  =====  =====  =====  =====  =====  =====

They cover a still head (0) up to fast turns (about 60 degrees/s and more) and are
denser where talking-head footage spends most of its time.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_BUCKET_CENTERS",
    "DEFAULT_BUCKET_RADII",
    "DEFAULT_REFERENCE_FPS",
    "SpeedEncoder",
    "head_rotation_speed",
]

#: Bucket centres in degrees per frame (at :data:`DEFAULT_REFERENCE_FPS`).
DEFAULT_BUCKET_CENTERS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5)
#: Bucket radii in degrees per frame.
DEFAULT_BUCKET_RADII: tuple[float, ...] = (0.1, 0.1, 0.15, 0.15, 0.25, 0.25, 0.5, 0.75, 1.5)
#: Frame rate the speeds (and default buckets) are expressed at.
DEFAULT_REFERENCE_FPS: float = 25.0


def _rotation_matrices(angles_rad: torch.Tensor) -> torch.Tensor:
    """``R = R_y(yaw) @ R_x(pitch) @ R_z(roll)`` for angles ``(..., 3)`` -> ``(..., 3, 3)``."""
    yaw, pitch, roll = angles_rad.unbind(-1)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)

    def stack(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    cy, sy, cp, sp, cr, sr = (
        yaw.cos(),
        yaw.sin(),
        pitch.cos(),
        pitch.sin(),
        roll.cos(),
        roll.sin(),
    )
    r_y = stack([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    r_x = stack([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    r_z = stack([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return r_y @ r_x @ r_z


def head_rotation_speed(
    angles: Any,
    *,
    method: Literal["geodesic", "euler"] = "geodesic",
    fps: float | None = None,
    reference_fps: float = DEFAULT_REFERENCE_FPS,
) -> torch.Tensor:
    """Per-frame head rotation speed (degrees per frame) from per-frame head angles.

    The speed of frame ``t`` is the rotation angle between the head poses of frames
    ``t-1`` and ``t``; frame 0 takes the speed of frame 1 (a single frame has speed 0).

    Parameters
    ----------
    angles
        Head angles ``(yaw, pitch, roll)`` in **degrees**, shape ``(f, 3)`` or
        ``(b, f, 3)``; a tensor, an array or nested lists.
    method
        ``"geodesic"`` (default): the angle of the relative rotation
        ``R_{t-1}^T R_t``, with ``R = R_y(yaw) R_x(pitch) R_z(roll)``; exact for
        any pose. ``"euler"``: the Euclidean norm of the angle differences (wrapped to
        ``[-180, 180)``), a common approximation that needs no rotation convention.
    fps
        Frame rate of the angle sequence. When given, speeds are rescaled to degrees
        per frame at ``reference_fps`` (``speed * fps / reference_fps``), so clips
        at other frame rates land in the same buckets.
    reference_fps
        Frame rate the buckets are defined at (25 by default).

    Returns
    -------
    torch.Tensor
        float32 speeds, shape ``(f,)`` or ``(b, f)``.

    Raises
    ------
    InputError
        If ``angles`` is not ``(f, 3)``/``(b, f, 3)``, is empty or holds NaN/inf.
    """
    try:
        values = torch.as_tensor(angles, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"head_rotation_speed: angles are not numeric: {exc}") from exc
    if values.ndim not in (2, 3) or values.shape[-1] != 3 or values.shape[-2] == 0:
        raise InputError(
            "head_rotation_speed: angles must be (f, 3) or (b, f, 3) degrees (yaw, pitch, roll) "
            f"with f >= 1, got shape {tuple(values.shape)}"
        )
    if not torch.isfinite(values).all():
        raise InputError("head_rotation_speed: angles hold NaN or inf; fill the gaps first")
    if method not in ("geodesic", "euler"):
        raise InputError(
            f"head_rotation_speed: method must be 'geodesic' or 'euler', not {method!r}"
        )
    if fps is not None and not (fps > 0 and reference_fps > 0):
        raise InputError(f"head_rotation_speed: fps={fps} and reference_fps must be positive")
    batched = values.ndim == 3
    if not batched:
        values = values[None]
    if values.shape[1] == 1:
        speed = torch.zeros(values.shape[0], 1, dtype=torch.float64)
    else:
        if method == "euler":
            diff = torch.remainder(values[:, 1:] - values[:, :-1] + 180.0, 360.0) - 180.0
            step = diff.norm(dim=-1)
        else:
            rot = _rotation_matrices(torch.deg2rad(values))
            rel = rot[:, :-1].transpose(-1, -2) @ rot[:, 1:]
            cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
            axis = torch.stack(
                [
                    rel[..., 2, 1] - rel[..., 1, 2],
                    rel[..., 0, 2] - rel[..., 2, 0],
                    rel[..., 1, 0] - rel[..., 0, 1],
                ],
                dim=-1,
            )
            sin = axis.norm(dim=-1) / 2.0
            step = torch.rad2deg(torch.atan2(sin, cos))
        speed = torch.cat([step[:, :1], step], dim=1)
    if fps is not None:
        speed = speed * (fps / reference_fps)
    speed = speed.to(torch.float32)
    return speed if batched else speed[0]


class SpeedEncoder(nn.Module):
    """EMO speed embedding: bucket codes ``tanh(3 (w - c_i) / r_i)`` of a frame window, then an MLP.

    Parameters
    ----------
    embed_dim
        Width ``d`` of the output embedding (the ``speed_embed_dim`` of the temporal
        modules).
    context_frames
        Window half-width ``m``: frame ``t`` is described by the codes of frames
        ``t-m .. t+m`` (2 by default, the paper's audio window; the paper does not give
        the speed window's size).
    bucket_centers
        Bucket centres ``c_i`` in degrees per frame (see the module docs for the
        defaults).
    bucket_radii
        Bucket radii ``r_i`` (positive), same length as ``bucket_centers``.
    reference_fps
        Frame rate the buckets are defined at (speeds in degrees per frame at this
        rate). Speeds measured at another rate are rescaled on the way in (``fps=``).

    Notes
    -----
    Parameters: ``linear_1`` (``(2m+1) k -> d``), SiLU, ``linear_2`` (``d -> d``). The
    buckets are configuration, not weights (non-persistent buffers ``centers`` and
    ``radii``).
    """

    centers: torch.Tensor
    radii: torch.Tensor

    def __init__(
        self,
        embed_dim: int,
        *,
        context_frames: int = 2,
        bucket_centers: tuple[float, ...] = DEFAULT_BUCKET_CENTERS,
        bucket_radii: tuple[float, ...] = DEFAULT_BUCKET_RADII,
        reference_fps: float = DEFAULT_REFERENCE_FPS,
    ) -> None:
        super().__init__()
        centers, radii = tuple(bucket_centers), tuple(bucket_radii)
        if embed_dim <= 0:
            raise ConfigError(f"SpeedEncoder: embed_dim={embed_dim} must be positive")
        if not centers or len(centers) != len(radii):
            raise ConfigError(
                f"SpeedEncoder: {len(centers)} bucket centres and {len(radii)} radii; give one "
                "radius per centre (at least one bucket)"
            )
        if not all(math.isfinite(c) for c in centers) or not all(
            math.isfinite(r) and r > 0 for r in radii
        ):
            raise ConfigError(
                "SpeedEncoder: bucket centres must be finite and radii finite and positive"
            )
        if (
            isinstance(context_frames, bool)
            or not isinstance(context_frames, int)
            or (context_frames < 0)
        ):
            raise ConfigError(
                f"SpeedEncoder: context_frames={context_frames!r} must be an int >= 0"
            )
        if not (math.isfinite(reference_fps) and reference_fps > 0):
            raise ConfigError(f"SpeedEncoder: reference_fps={reference_fps} must be positive")
        self.embed_dim = embed_dim
        self.reference_fps = float(reference_fps)
        self.context_frames = context_frames
        self._buckets = (centers, radii)
        self._init_non_persistent_buffers()
        self.linear_1 = nn.Linear((2 * context_frames + 1) * len(centers), embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(embed_dim, embed_dim)

    def _init_non_persistent_buffers(self) -> None:
        """(Re)build ``centers`` and ``radii`` from the config (also after a meta-device load)."""
        centers, radii = self._buckets
        self.register_buffer(
            "centers", torch.tensor(centers, dtype=torch.float32), persistent=False
        )
        self.register_buffer("radii", torch.tensor(radii, dtype=torch.float32), persistent=False)

    @property
    def num_buckets(self) -> int:
        """Number of buckets ``k``."""
        return int(self.centers.numel())

    def _check(self, speed: torch.Tensor) -> None:
        if not isinstance(speed, torch.Tensor) or speed.ndim != 2:
            shape = tuple(speed.shape) if isinstance(speed, torch.Tensor) else type(speed).__name__
            raise InputError(
                f"SpeedEncoder: speed must be a (b, f) tensor of degrees per frame, got {shape}"
            )
        # A value check syncs with the device and breaks torch.compile graphs: eager only.
        if not torch.compiler.is_compiling() and not torch.isfinite(speed).all():
            raise InputError("SpeedEncoder: speed holds NaN or inf")

    def encode_buckets(self, speed: torch.Tensor) -> torch.Tensor:
        """The bucket code ``s_i = tanh(3 (w - c_i) / r_i)``.

        Parameters
        ----------
        speed
            Speeds in degrees per frame, shape ``(b, f)``.

        Returns
        -------
        torch.Tensor
            Shape ``(b, f, k)``, values in ``(-1, 1)``, float32.
        """
        self._check(speed)
        w = speed.to(device=self.centers.device, dtype=torch.float32)[..., None]
        return torch.tanh(3.0 * (w - self.centers) / self.radii)

    def at_reference_fps(self, speed: torch.Tensor, fps: float | None) -> torch.Tensor:
        """Rescale speeds in degrees per frame at ``fps`` to degrees per frame at ``reference_fps``.

        A head turning at ``w`` degrees per frame at ``fps`` turns ``w * fps`` degrees per
        second, that is ``w * fps / reference_fps`` degrees per reference frame.
        ``fps=None`` returns ``speed`` unchanged.
        """
        if fps is None or fps == self.reference_fps:
            return speed
        if not (math.isfinite(fps) and fps > 0):
            raise InputError(f"SpeedEncoder: fps={fps} must be a positive frame rate")
        return speed * (fps / self.reference_fps)

    def window_codes(self, speed: torch.Tensor, *, padded: bool = False) -> torch.Tensor:
        """The concatenated bucket codes of each frame's window ``t-m .. t+m``.

        Parameters
        ----------
        speed
            Speeds in degrees per frame (at ``reference_fps``), ``(b, f)``; with
            ``padded=True``, ``(b, f + 2m)``: ``m`` real neighbouring frames on each side.
        padded
            Whether ``speed`` carries its own context frames. Otherwise the edge frames
            are repeated.

        Returns
        -------
        torch.Tensor
            ``(b, f, (2m+1) k)`` float32, frame ``t-m``'s ``k`` codes first.
        """
        m = self.context_frames
        code = self.encode_buckets(speed)  # (b, F, k)
        if padded:
            if code.shape[1] <= 2 * m:
                raise InputError(
                    f"SpeedEncoder: padded speed needs f + 2m > {2 * m} frames, got {code.shape[1]}"
                )
        elif m:
            code = torch.cat(
                [code[:, :1].expand(-1, m, -1), code, code[:, -1:].expand(-1, m, -1)], dim=1
            )
        windows = code.unfold(1, 2 * m + 1, 1)  # (b, f, k, 2m+1)
        return rearrange(windows, "b f k w -> b f (w k)")

    def forward(
        self, speed: torch.Tensor, *, fps: float | None = None, padded: bool = False
    ) -> torch.Tensor:
        """Embed per-frame speeds.

        Parameters
        ----------
        speed
            Speeds in degrees per frame, shape ``(b, f)``, or ``(b, f + 2m)`` with
            ``padded=True``.
        fps
            Frame rate the speeds are measured at; ``None`` means ``reference_fps``.
        padded
            ``speed`` holds ``m`` real context frames on each side (see
            :meth:`window_codes`).

        Returns
        -------
        torch.Tensor
            Shape ``(b, f, embed_dim)`` in the dtype of the MLP weights.

        Raises
        ------
        InputError
            If ``speed`` is not a finite ``(b, f)`` tensor.
        """
        self._check(speed)
        codes = self.window_codes(self.at_reference_fps(speed, fps), padded=padded)
        codes = codes.to(self.linear_1.weight.dtype)
        return self.linear_2(self.act(self.linear_1(codes)))  # type: ignore[no-any-return]

    @staticmethod
    def speed_from_angles(
        angles: Any,
        *,
        method: Literal["geodesic", "euler"] = "geodesic",
        fps: float | None = None,
        reference_fps: float = DEFAULT_REFERENCE_FPS,
    ) -> torch.Tensor:
        """Same as :func:`head_rotation_speed`: per-frame speeds from head angles in degrees.

        Parameters
        ----------
        angles
            ``(f, 3)`` or ``(b, f, 3)`` yaw/pitch/roll in degrees.
        method
            ``"geodesic"`` or ``"euler"``.
        fps
            Frame rate of ``angles``, to rescale to ``reference_fps``.
        reference_fps
            Frame rate the buckets are defined at.

        Returns
        -------
        torch.Tensor
            ``(f,)`` or ``(b, f)`` degrees per frame.
        """
        return head_rotation_speed(angles, method=method, fps=fps, reference_fps=reference_fps)
