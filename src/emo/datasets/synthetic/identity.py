"""Identities of synthetic heads: every visible trait drawn from one seed.

The training and held-out splits draw from disjoint parts of the trait space,
so a held-out head is unlike every training head, not a near copy of one:

- discrete traits have disjoint choices (hair styles, background patterns);
- every colour trait is a position ``u`` in ``[0, 1)`` along a palette, cut into
  eight bands: training heads use the even bands, held-out heads the odd ones.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from emo.errors import InputError

__all__ = [
    "HAIR_STYLES",
    "STYLES",
    "Color",
    "Identity",
    "Split",
    "sample_identity",
]

Color = tuple[float, float, float]
Split = Literal["train", "heldout"]

STYLES = ("flat", "shaded", "painted")
HAIR_STYLES = {"train": ("short", "long", "bald"), "heldout": ("bun", "fringe")}
BACKGROUNDS = {"train": ("gradient", "stripes"), "heldout": ("dots", "checker")}
_BANDS = 8

# Skin palette from deep brown to light peach (sRGB, 0..1); a position interpolates.
_SKIN = np.array(
    [
        [0.42, 0.26, 0.16],
        [0.55, 0.36, 0.23],
        [0.68, 0.47, 0.33],
        [0.82, 0.62, 0.48],
        [0.96, 0.80, 0.68],
    ]
)
_HAIR = np.array(
    [
        [0.06, 0.05, 0.05],
        [0.25, 0.14, 0.07],
        [0.50, 0.30, 0.12],
        [0.80, 0.62, 0.32],
        [0.55, 0.55, 0.58],
    ]
)
_IRIS = np.array([[0.22, 0.12, 0.05], [0.35, 0.45, 0.20], [0.20, 0.40, 0.65], [0.40, 0.30, 0.20]])


@dataclasses.dataclass(frozen=True)
class Identity:
    """Every trait of one synthetic head (lengths in head units: half the head height is 1).

    Build one with :func:`sample_identity`; all fields are plain numbers, strings
    and tuples, so ``dataclasses.asdict`` gives a JSON-ready description.
    """

    seed: int
    split: Split
    style: str
    head_scale: float  # head half-height as a fraction of the half frame
    head_width: float  # ellipsoid x semi-axis (the y semi-axis is 1)
    head_depth: float  # ellipsoid z semi-axis
    skin: Color
    hair_style: str
    hair_color: Color
    hairline: float
    temple: float
    eye_spacing: float
    eye_height: float
    eye_width: float
    eye_open: float
    iris: Color
    brow_thickness: float
    brow_tilt: float
    nose_length: float
    mouth_y: float
    mouth_width: float
    lip_color: Color
    lip_thickness: float
    background: str
    background_colors: tuple[Color, Color]
    clothes: Color
    glasses: Color | None
    hat: Color | None
    earrings: Color | None
    light: tuple[float, float, float]
    texture_seed: int


def _band(rng: np.random.Generator, split: Split) -> float:
    """A position in [0, 1) inside one of this split's bands."""
    band = 2 * int(rng.integers(_BANDS // 2)) + (1 if split == "heldout" else 0)
    return (band + float(rng.uniform(0.1, 0.9))) / _BANDS


def _palette(colors: np.ndarray, u: float) -> Color:
    x = u * (len(colors) - 1)
    i = min(int(x), len(colors) - 2)
    c = colors[i] * (1 - (x - i)) + colors[i + 1] * (x - i)
    return (float(c[0]), float(c[1]), float(c[2]))


def _hue(u: float, saturation: float, value: float) -> Color:
    """HSV -> RGB for a hue position ``u`` in [0, 1)."""
    h = (u % 1.0) * 6.0
    i = int(h)
    f = h - i
    p, q, t = (
        value * (1 - saturation),
        value * (1 - saturation * f),
        value * (1 - saturation * (1 - f)),
    )
    rgb = [
        (value, t, p),
        (q, value, p),
        (p, value, t),
        (p, q, value),
        (t, p, value),
        (value, p, q),
    ][i % 6]
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def sample_identity(seed: int, split: Split = "train") -> Identity:
    """Draw one identity; the same ``(seed, split)`` always gives the same head.

    Parameters
    ----------
    seed
        Any non-negative integer.
    split
        ``"train"`` or ``"heldout"``: the two splits share no hair style, no
        background pattern and no colour band (see the module docstring).

    Raises
    ------
    InputError
        On a negative seed or an unknown split.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"identity seed must be a non-negative int, got {seed!r}")
    if split not in ("train", "heldout"):
        raise InputError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 11])
    skin = _palette(_SKIN, _band(rng, split))
    hair = _palette(_HAIR, _band(rng, split))
    bg_u = _band(rng, split)
    bg = (_hue(bg_u, 0.35, 0.85), _hue(bg_u + 0.12, 0.5, 0.55))
    lip_mix = float(rng.uniform(0.3, 0.7))
    lip = tuple(
        float(s * (1 - lip_mix) + r * lip_mix) for s, r in zip(skin, (0.62, 0.16, 0.2), strict=True)
    )
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(0.2, 0.8), 1.0])
    light /= np.linalg.norm(light)

    def maybe(probability: float, u: float) -> Color | None:
        return _hue(u, 0.6, 0.55) if rng.uniform() < probability else None

    return Identity(
        seed=seed,
        split=split,
        style=STYLES[int(rng.integers(len(STYLES)))],
        head_scale=float(rng.uniform(0.5, 0.58)),
        head_width=float(rng.uniform(0.72, 0.86)),
        head_depth=float(rng.uniform(0.75, 0.9)),
        skin=skin,
        hair_style=str(rng.choice(HAIR_STYLES[split])),
        hair_color=hair,
        hairline=float(rng.uniform(0.5, 0.68)),
        temple=float(rng.uniform(0.1, 0.45)),
        eye_spacing=float(rng.uniform(0.27, 0.33)),
        eye_height=float(rng.uniform(0.12, 0.2)),
        eye_width=float(rng.uniform(0.12, 0.15)),
        eye_open=float(rng.uniform(0.06, 0.085)),
        iris=_palette(_IRIS, float(rng.uniform())),
        brow_thickness=float(rng.uniform(0.025, 0.045)),
        brow_tilt=float(rng.uniform(-0.25, 0.25)),
        nose_length=float(rng.uniform(0.16, 0.24)),
        mouth_y=float(rng.uniform(-0.5, -0.44)),
        mouth_width=float(rng.uniform(0.28, 0.34)),
        lip_color=(lip[0], lip[1], lip[2]),
        lip_thickness=float(rng.uniform(0.07, 0.095)),
        background=str(rng.choice(BACKGROUNDS[split])),
        background_colors=bg,
        clothes=_hue(_band(rng, split), 0.55, 0.6),
        glasses=maybe(0.3, float(rng.uniform())),
        hat=maybe(0.2, _band(rng, split)),
        earrings=maybe(0.3, float(rng.uniform(0.1, 0.2))),
        light=(float(light[0]), float(light[1]), float(light[2])),
        texture_seed=int(rng.integers(2**31)),
    )
