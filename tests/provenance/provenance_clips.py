"""Real test content for the provenance tests: photographs from scikit-image as short clips."""

from __future__ import annotations

import numpy as np
from skimage import data as skimage_data
from skimage import transform as skimage_transform

#: scikit-image's colour and grey photographs (shipped with the package, no download).
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "cat",
    "page",
    "text",
    "moon",
    "coins",
    "horse",
    "grass",
    "gravel",
    "brick",
    "colorwheel",
)

#: The photographs of natural scenes: graphics with large flat areas (a colour wheel, a
#: silhouette, rendered text) are left out of the marked set; see the guide's limits.
NATURAL = tuple(name for name in PHOTOS if name not in ("colorwheel", "horse", "text"))


def photo(name: str, size: int) -> np.ndarray:
    """A photograph as uint8 ``(size, size, 3)``: its centre square, resized."""
    image = np.asarray(getattr(skimage_data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    resized = skimage_transform.resize(
        square, (size, size), anti_aliasing=True, preserve_range=True
    )
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def talking_clip(
    index: int, *, size: int = 128, frames: int = 6, photos: tuple[str, ...] = PHOTOS
) -> np.ndarray:
    """A short clip that moves like a talking head: a still background, a moving centre.

    The centre disc (the "head") drifts by a pixel per frame over a still photograph,
    the way a generated talking-head video moves; clip ``index`` picks the photograph,
    the disc's size and its direction (from ``photos``). Returns uint8
    ``(frames, size, size, 3)``.
    """
    rng = np.random.default_rng(index)
    base = photo(photos[index % len(photos)], size + 2 * frames)
    still = base[frames : frames + size, frames : frames + size]
    yy, xx = np.mgrid[:size, :size]
    radius = size * rng.uniform(0.2, 0.35)
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius**2
    dy, dx = rng.integers(-1, 2, size=2)
    clip = []
    for t in range(frames):
        moved = base[
            frames + dy * t : frames + dy * t + size, frames + dx * t : frames + dx * t + size
        ]
        clip.append(np.where(disc[..., None], moved, still))
    return np.stack(clip)
