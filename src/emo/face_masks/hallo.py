"""Hallo's face-region input and soft full/face/lip masks, made by emo's own code.

Hallo (``hallo/utils/util.py`` ``get_mask`` and ``hallo/datasets/image_processor.py``)
conditions its denoising UNet on

- the **face region**: the face box as a 0/1 image at the output size, input of the face
  locator;
- three **soft masks** weighting its audio attention, each at four latent resolutions:
  *full* (background, for head pose), *face* (face minus lips, for expression) and *lip*.

The recipe, reproduced byte for byte from landmarks (``tests/face_masks/test_hallo_masks.py``
compares with masks made by Hallo's own code):

1. face box and lip box from landmarks (:func:`~emo.face_masks.hallo_landmarks.hallo_boxes`),
   drawn as 0/255 images at the image's resolution;
2. each box image resized to 64x64 (OpenCV linear), blurred (Gaussian 51x51 for the face,
   31x31 for the lips, OpenCV's default sigma) and min-max stretched to 0..255: ``blur_face``
   and ``sep_lip``;
3. ``sep_background = uint8(255 * (1 - blur_face / 255))`` and
   ``sep_face = max(blur_face - sep_lip, 0)``;
4. each 64x64 mask resized (Pillow bilinear) to ``h / 2**l`` for levels ``l = 0..3``
   (``h`` = latent size), divided by 255, flattened row by row; the face box image resized
   (Pillow bilinear) to the output size, divided by 255, three equal channels.

The OpenCV and Pillow operations are emo's numpy re-implementations of their integer
arithmetic (:mod:`emo.face_masks._opencv_exact`, :mod:`emo.io.resample`): neither library
is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emo.errors import FaceNotFoundError, ImageError, InputError
from emo.face_masks._opencv_exact import gaussian_blur_u8, normalize_minmax_u8, resize_linear_u8
from emo.face_masks.hallo_landmarks import (
    DLIB_68,
    MEDIAPIPE_478,
    Box,
    LandmarkSubsets,
    hallo_boxes,
)
from emo.io.resample import resize_bilinear_pil

if TYPE_CHECKING:
    from emo.face.analyzer import FaceAnalyzer
    from emo.models.masked_audio import AudioMasks

__all__ = [
    "HalloMaskImages",
    "HalloMasks",
    "box_image",
    "hallo_mask_images",
    "hallo_masks",
    "hallo_masks_from_boxes",
    "hallo_masks_from_image",
    "hallo_masks_from_landmarks",
]

MASK_SIZE = 64  # Hallo's blurred masks are 64x64
FACE_BLUR = 51  # Gaussian kernel side for the face mask
LIP_BLUR = 31  # ... and for the lip mask
LEVELS = 4  # latent resolutions h, h/2, h/4, h/8
# Hallo's cache file names: f"{stem}{suffix}" (get_mask in hallo/utils/util.py).
_FILES = {
    "face_mask": "_face_mask.png",
    "lip_mask": "_lip_mask.png",
    "sep_background": "_sep_background.png",
    "sep_face": "_sep_face.png",
    "sep_lip": "_sep_lip.png",
}


def box_image(box: Box, image_size: tuple[int, int]) -> np.ndarray:
    """A box drawn as uint8 ``(height, width)``: 255 inside ``[y0, y1) x [x0, x1)``, 0 outside."""
    height, width = image_size
    image = np.zeros((height, width), dtype=np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return image


def _blurred(mask: np.ndarray, ksize: int) -> np.ndarray:
    """Hallo's ``get_blur_mask``: 64x64 linear resize, Gaussian blur, min-max stretch -> uint8 ``(64, 64)``."""
    small = resize_linear_u8(mask, (MASK_SIZE, MASK_SIZE))
    return normalize_minmax_u8(gaussian_blur_u8(small, ksize))


@dataclass(frozen=True)
class HalloMaskImages:
    """The mask images Hallo writes to its cache folder, as uint8 arrays.

    Attributes
    ----------
    face_mask
        uint8 ``(H, W)``, the face box: 0 or 255, at the portrait's resolution.
    sep_background
        uint8 ``(64, 64)``: the full (pose) mask, ``255 - blurred face``.
    sep_face
        uint8 ``(64, 64)``: the blurred face minus the blurred lips.
    sep_lip
        uint8 ``(64, 64)``: the blurred lips.
    lip_mask
        uint8 ``(H, W)``, the lip box (0 or 255), or None when not known (it only feeds
        ``sep_lip``).

    Each field also takes a file path, a PIL image, an RGB array (its first channel is
    used), a float array in ``[0, 1]`` or a tensor; it is stored as uint8 ``(h, w)``.
    """

    face_mask: np.ndarray
    sep_background: np.ndarray
    sep_face: np.ndarray
    sep_lip: np.ndarray
    lip_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("face_mask", "sep_background", "sep_face", "sep_lip", "lip_mask"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _gray(value, name))

    @classmethod
    def load(cls, folder: str | os.PathLike[str], stem: str) -> HalloMaskImages:
        """Read the PNGs Hallo's ``get_mask`` writes: ``{stem}_face_mask.png``, ``{stem}_sep_*.png``.

        Parameters
        ----------
        folder
            Hallo's cache folder.
        stem
            The portrait's file name without extension (Hallo's ``file_name``).

        Raises
        ------
        ImageError
            If a file is missing or not an image; the message names it.
        """
        base = Path(folder)
        paths = {name: base / f"{stem}{suffix}" for name, suffix in _FILES.items()}
        lip_mask = paths["lip_mask"] if paths["lip_mask"].exists() else None
        return cls(
            face_mask=_gray(paths["face_mask"], "face_mask"),
            sep_background=_gray(paths["sep_background"], "sep_background"),
            sep_face=_gray(paths["sep_face"], "sep_face"),
            sep_lip=_gray(paths["sep_lip"], "sep_lip"),
            lip_mask=None if lip_mask is None else _gray(lip_mask, "lip_mask"),
        )


def _gray(value: Any, name: str) -> np.ndarray:
    """A mask image from a path, PIL image, array or tensor -> uint8 ``(h, w)`` (first channel)."""
    if isinstance(value, (str, os.PathLike, bytes)):
        from emo.io.image import load_image

        try:
            return np.ascontiguousarray(load_image(value)[..., 0])
        except ImageError as exc:
            raise ImageError(f"{name}: {exc}") from exc
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise InputError(f"{name} must be a grayscale image (h, w), got shape {array.shape}")
    if array.dtype != np.uint8:
        if array.dtype.kind == "f" and array.min() >= 0.0 and array.max() <= 1.0:
            array = np.rint(array * 255.0).astype(np.uint8)
        elif array.dtype.kind in "iu" and array.min() >= 0 and array.max() <= 255:
            array = array.astype(np.uint8)
        else:
            raise InputError(
                f"{name} must be uint8 0..255 (or float 0..1), got {array.dtype} "
                f"with values {array.min()}..{array.max()}"
            )
    return np.ascontiguousarray(array)


def hallo_mask_images(face_box: Box, lip_box: Box, image_size: tuple[int, int]) -> HalloMaskImages:
    """Hallo's mask images (``get_mask`` after the landmarks) from the two boxes.

    Parameters
    ----------
    face_box, lip_box
        ``(x0, y0, x1, y1)`` whole pixels, end exclusive.
    image_size
        ``(height, width)`` of the portrait.

    Returns
    -------
    HalloMaskImages
        ``face_mask``/``lip_mask`` uint8 ``(H, W)``; ``sep_*`` uint8 ``(64, 64)``.
    """
    height, width = (int(v) for v in image_size)
    face_mask = box_image(face_box, (height, width))
    lip_mask = box_image(lip_box, (height, width))
    blur_face = _blurred(face_mask, FACE_BLUR)
    sep_lip = _blurred(lip_mask, LIP_BLUR)
    # Hallo: (1.0 - image / 255.0) * 255, cast to uint8 (truncation), in float64.
    sep_background = ((1.0 - blur_face / 255.0) * 255).astype(np.uint8)
    sep_face = np.clip(blur_face.astype(np.int16) - sep_lip, 0, 255).astype(np.uint8)
    return HalloMaskImages(
        face_mask=face_mask,
        sep_background=sep_background,
        sep_face=sep_face,
        sep_lip=sep_lip,
        lip_mask=lip_mask,
    )


@dataclass(frozen=True)
class HalloMasks:
    """What Hallo's denoising UNet receives from the portrait's masks, for one frame.

    Attributes
    ----------
    face_region
        float32 ``(3, H, W)``: the face-locator input at the output size, 1 inside the face
        box and 0 outside (three equal channels; in between along an edge that falls
        between pixels after a resize).
    full, face, lip
        ``LEVELS`` float32 tensors each, level ``l`` of shape ``(h_l * w_l,)`` with
        ``h_l = h // 2**l`` (``h x w`` = latent size), values in ``[0, 1]``, row-major
        (index ``y * w_l + x``). Hallo repeats them over the clip's frames (and the two
        guidance rows); that is the caller's job.
    face_box, lip_box
        ``(x0, y0, x1, y1)`` in the portrait's pixels, when computed from landmarks or boxes.
    images
        The uint8 mask images they were made from.
    """

    face_region: torch.Tensor
    full: list[torch.Tensor]
    face: list[torch.Tensor]
    lip: list[torch.Tensor]
    images: HalloMaskImages
    face_box: Box | None = None
    lip_box: Box | None = None

    def audio_masks(self, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> AudioMasks:
        """The masks as the masked audio modules take them: one row, ``(1, h_l * w_l)`` per level.

        Parameters
        ----------
        weights
            Hallo's ``motion_scale``: the pose (full), face and lip weights.
        """
        from emo.models.masked_audio import AudioMasks

        return AudioMasks(
            [m[None] for m in self.full],
            [m[None] for m in self.face],
            [m[None] for m in self.lip],
            weights=weights,
        )


def _latent_hw(latent_size: Any) -> tuple[int, int]:
    """``h`` or ``(h, w)`` -> ``(h, w)``, each at least ``2 ** (LEVELS - 1)``."""
    values: list[int] = []
    if isinstance(latent_size, (int, np.integer)) and not isinstance(latent_size, bool):
        values = [int(latent_size)] * 2
    elif isinstance(latent_size, (tuple, list)):
        try:
            values = [int(v) for v in latent_size]
        except (TypeError, ValueError):
            values = []
    if len(values) != 2 or min(values) < 2 ** (LEVELS - 1):
        raise InputError(
            f"latent_size must be an int or (h, w), each at least {2 ** (LEVELS - 1)} (the "
            f"smallest of the {LEVELS} levels is latent / {2 ** (LEVELS - 1)}), got {latent_size!r}"
        )
    return values[0], values[1]


def hallo_masks(
    images: HalloMaskImages,
    latent_size: int | tuple[int, int],
    *,
    output_size: tuple[int, int] | None = None,
    face_box: Box | None = None,
    lip_box: Box | None = None,
) -> HalloMasks:
    """Turn Hallo's mask images into the tensors its UNet takes (``ImageProcessor.preprocess``).

    Parameters
    ----------
    images
        The mask images (made by :func:`hallo_mask_images`, or read from Hallo's cache
        folder with :meth:`HalloMaskImages.load`, or your own).
    latent_size
        ``h`` or ``(h, w)`` of the latents (output size / 8).
    output_size
        ``(H, W)`` of the generated frames; default ``8 * latent_size``.
    face_box, lip_box
        Recorded in the result.

    Returns
    -------
    HalloMasks
        ``face_region`` float32 ``(3, H, W)``; ``full``/``face``/``lip``: 4 float32 tensors
        ``(h_l * w_l,)``.
    """
    h, w = _latent_hw(latent_size)
    out_h, out_w = (8 * h, 8 * w) if output_size is None else (int(v) for v in output_size)
    if out_h < 1 or out_w < 1:
        raise InputError(f"output_size must be positive (height, width), got {output_size!r}")

    def levels(mask: np.ndarray) -> list[torch.Tensor]:
        out = []
        for level in range(LEVELS):
            small = resize_bilinear_pil(mask, (h >> level, w >> level))
            out.append(torch.from_numpy(small.reshape(-1).astype(np.float32)) / 255.0)
        return out

    region = resize_bilinear_pil(images.face_mask, (out_h, out_w))
    face_region = (torch.from_numpy(region.astype(np.float32)) / 255.0).expand(3, -1, -1)
    return HalloMasks(
        face_region=face_region.contiguous(),
        full=levels(images.sep_background),
        face=levels(images.sep_face),
        lip=levels(images.sep_lip),
        images=images,
        face_box=face_box,
        lip_box=lip_box,
    )


def hallo_masks_from_boxes(
    face_box: Box,
    lip_box: Box,
    image_size: tuple[int, int],
    latent_size: int | tuple[int, int],
    *,
    output_size: tuple[int, int] | None = None,
) -> HalloMasks:
    """Hallo's masks from a face box and a lip box you give (already expanded).

    Parameters
    ----------
    face_box, lip_box
        ``(x0, y0, x1, y1)`` in the portrait's pixels, end exclusive; clipped to the image.
    image_size
        ``(height, width)`` of the portrait.
    latent_size, output_size
        As in :func:`hallo_masks`.

    Returns
    -------
    HalloMasks
    """
    height, width = (int(v) for v in image_size)
    boxes = []
    for name, box in (("face_box", face_box), ("lip_box", lip_box)):
        try:
            x0, y0, x1, y1 = (round(float(v)) for v in box)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be (x0, y0, x1, y1) in pixels, got {box!r}") from exc
        clipped = (
            min(max(x0, 0), width),
            min(max(y0, 0), height),
            min(max(x1, 0), width),
            min(max(y1, 0), height),
        )
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise InputError(
                f"{name} {box!r} holds no pixel of the {width}x{height} image; give "
                "(x0, y0, x1, y1) with x0 < x1, y0 < y1 inside the image"
            )
        boxes.append(clipped)
    images = hallo_mask_images(boxes[0], boxes[1], (height, width))
    return hallo_masks(
        images, latent_size, output_size=output_size, face_box=boxes[0], lip_box=boxes[1]
    )


def hallo_masks_from_landmarks(
    landmarks: Any,
    image_size: tuple[int, int],
    latent_size: int | tuple[int, int],
    *,
    output_size: tuple[int, int] | None = None,
    subsets: LandmarkSubsets = MEDIAPIPE_478,
    face_expand_ratio: float = 1.2,
    lip_expand_ratio: float = 2.0,
) -> HalloMasks:
    """Hallo's masks from one face's landmarks (``get_mask`` + ``ImageProcessor``).

    With MediaPipe's 478 points (the default ``subsets``) this is Hallo's computation,
    byte for byte; with :data:`~emo.face_masks.hallo_landmarks.DLIB_68` the boxes are emo's
    estimate (see the face-mask guide for the measured difference).

    Parameters
    ----------
    landmarks
        ``(n, 2)`` points ``(x, y)`` in the portrait's pixels.
    image_size
        ``(height, width)`` of the portrait.
    latent_size
        ``h`` or ``(h, w)`` of the latents (output size / 8).
    output_size
        ``(H, W)`` of the generated frames; default ``8 * latent_size``.
    subsets
        The landmark layout.
    face_expand_ratio, lip_expand_ratio
        Box growth (Hallo: 1.2 and 2.0).

    Returns
    -------
    HalloMasks
        ``face_region`` float32 ``(3, H, W)``; ``full``/``face``/``lip``: 4 float32 tensors
        ``(h_l * w_l,)``.

    Raises
    ------
    InputError
        Landmarks of the wrong shape, or whose boxes miss the image.
    FaceNotFoundError
        NaN landmarks (no face).
    """
    face_box, lip_box = hallo_boxes(
        landmarks,
        image_size,
        subsets=subsets,
        face_expand_ratio=face_expand_ratio,
        lip_expand_ratio=lip_expand_ratio,
    )
    images = hallo_mask_images(face_box, lip_box, image_size)
    return hallo_masks(
        images, latent_size, output_size=output_size, face_box=face_box, lip_box=lip_box
    )


def hallo_masks_from_image(
    image: Any,
    latent_size: int | tuple[int, int],
    *,
    output_size: tuple[int, int] | None = None,
    analyzer: FaceAnalyzer | None = None,
    subsets: LandmarkSubsets = DLIB_68,
    face_expand_ratio: float = 1.2,
    lip_expand_ratio: float = 2.0,
) -> HalloMasks:
    """Hallo's masks from a portrait, with emo's own face landmarks (dlib, the ``face`` extra).

    Parameters
    ----------
    image
        The portrait: a path, PIL image, uint8 array ``(H, W, 3)`` or tensor (see
        :func:`emo.io.image.load_image`).
    latent_size, output_size
        As in :func:`hallo_masks`.
    analyzer
        A :class:`emo.face.FaceAnalyzer` to reuse (default: a new dlib one).
    subsets
        How the 68 landmarks stand in for Hallo's (default
        :data:`~emo.face_masks.hallo_landmarks.DLIB_68`).
    face_expand_ratio, lip_expand_ratio
        Box growth (Hallo: 1.2 and 2.0).

    Returns
    -------
    HalloMasks

    Raises
    ------
    FaceNotFoundError
        When no face is found; give the boxes with :func:`hallo_masks_from_boxes`
        (the whole frame, ``(0, 0, W, H)``, is Hallo's own fallback for the face embedding).
    PluginLoadError
        Without dlib (``pip install "emo[face]"``).
    """
    from emo.face.analyzer import FaceAnalyzer
    from emo.io.image import load_image

    pixels = load_image(image)
    if analyzer is None:
        analyzer = FaceAnalyzer("dlib")
    track = analyzer.analyze(pixels)
    landmarks = track.landmarks[0].astype(np.float64)
    if not track.found[0] or not np.isfinite(landmarks).all():
        raise FaceNotFoundError(
            f"no face with landmarks in the {pixels.shape[1]}x{pixels.shape[0]} portrait "
            f"({track.notes[0]}); give the face and lip boxes with hallo_masks_from_boxes "
            "or the masks themselves"
        )
    return hallo_masks_from_landmarks(
        landmarks,
        pixels.shape[:2],
        latent_size,
        output_size=output_size,
        subsets=subsets,
        face_expand_ratio=face_expand_ratio,
        lip_expand_ratio=lip_expand_ratio,
    )
