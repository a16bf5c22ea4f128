"""Loading a portrait image from anything, and cropping it around the face.

Files are decoded with PyAV (FFmpeg's image decoders: PNG, JPEG, WebP, BMP,
TIFF, GIF...), so Pillow is not needed at runtime. PIL images, numpy arrays and
torch tensors are accepted as they are.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from emo.errors import ImageError, ImageTooLargeError
from emo.io.image_header import image_dimensions
from emo.limits import check_image_size

__all__ = ["crop_and_resize", "expand_box_to_aspect", "grow_box_within", "load_image"]

_MAX_SIDE = 16384  # largest output side crop_and_resize makes, in pixels
_FFMPEG_MAX_PIXELS = (2**31 - 1) // 8  # FFmpeg's av_image_check_size2 default
_MAX_BOX_SCALE = 8  # a face box larger than this many times the image is a unit mistake


def _describe(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return repr(os.fspath(src))
    if isinstance(src, (np.ndarray, torch.Tensor)):
        return f"{type(src).__name__} of shape {tuple(src.shape)} and dtype {src.dtype}"
    return f"object of type {type(src).__name__}"


def _decode_file(src: str | os.PathLike[str] | bytes, label: str) -> np.ndarray:
    """Decode the first frame of an image file with PyAV into uint8 ``(h, w, 3|4)``."""
    import av

    if isinstance(src, (str, os.PathLike)):
        if not os.fspath(src):
            raise ImageError("image path is an empty string; give the path of an image file")
        path = Path(src)
        if not path.exists():
            raise ImageError(f"image {label} does not exist; check the path")
        if path.is_dir():
            raise ImageError(f"image {label} is a folder; give the path of an image file")
        if path.stat().st_size == 0:
            raise ImageError(f"image {label} is an empty file")
        target: Any = os.fspath(path)
    else:
        if len(src) == 0:
            raise ImageError("image bytes are empty")
        target = io.BytesIO(src)
    # Refuse a huge image from its header, before a decoder allocates it (or fails on it).
    stated = image_dimensions(src)
    if stated is not None:
        check_image_size(*stated, label)
    try:
        with av.open(target, "r") as container:
            if not container.streams.video:
                raise ImageError(
                    f"{label} holds no image (no video stream); give a PNG or JPEG file"
                )
            context = container.streams.video[0].codec_context
            if context.width and context.height:
                check_image_size(int(context.width), int(context.height), label)
            frame = next(container.decode(video=0), None)
    except ImageError:
        raise
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        if stated is not None and stated[0] * stated[1] > _FFMPEG_MAX_PIXELS:
            raise ImageTooLargeError(
                f"image {label} is {stated[0]}x{stated[1]} pixels, more than FFmpeg's image "
                f"decoders accept ({_FFMPEG_MAX_PIXELS:,} pixels); downscale it"
            ) from exc
        raise ImageError(
            f"cannot decode {label} as an image ({type(exc).__name__}: {exc}); "
            "is it a PNG, JPEG or WebP file and not corrupt?"
        ) from exc
    if frame is None:
        raise ImageError(f"{label} holds no decodable image; the file may be truncated or corrupt")
    # Gray+alpha and RGBA/YUVA have an even number of components; palettes may hold alpha.
    has_alpha = len(frame.format.components) in (2, 4) or frame.format.has_palette
    array: np.ndarray = frame.to_ndarray(format="rgba" if has_alpha else "rgb24")
    return array


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    """Normalise a numpy image to uint8 ``(h, w, 3)``: grayscale expanded, RGBA over white."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageError(
            f"image {label} must be (h, w), (h, w, 3) or (h, w, 4) (or a torch (3, h, w)); "
            f"got shape {tuple(array.shape)}"
        )
    if 0 in array.shape:
        raise ImageError(f"image {label} is empty")
    check_image_size(int(array.shape[1]), int(array.shape[0]), label)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageError(f"image {label} holds NaN or inf values")
        lo, hi = float(array.min()), float(array.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise ImageError(
                f"float image {label} must hold values in [0, 1], found [{lo:.3g}, {hi:.3g}]; "
                "divide by 255 or pass uint8"
            )
        data = np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0
    elif array.dtype == np.uint8:
        data = array.astype(np.float32)
    else:
        raise ImageError(f"image {label} must be uint8 or float in [0, 1], got dtype {array.dtype}")
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    elif data.shape[-1] == 4:
        alpha = data[..., 3:] / 255.0
        data = data[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(np.clip(np.rint(data), 0, 255).astype(np.uint8))


def load_image(src: Any) -> np.ndarray:
    """Load an image as uint8 RGB ``(h, w, 3)``.

    Parameters
    ----------
    src
        One of:

        - a path (``str`` or :class:`os.PathLike`) or ``bytes`` of a PNG, JPEG, WebP,
          BMP, TIFF or GIF file (the first frame), decoded with PyAV;
        - a PIL image (read through :func:`numpy.asarray`, any mode that gives
          ``L``, ``RGB`` or ``RGBA`` pixels);
        - a numpy array ``(h, w)``, ``(h, w, 1)``, ``(h, w, 3)`` or ``(h, w, 4)``,
          uint8 or float in ``[0, 1]``;
        - a torch tensor ``(3, h, w)``, ``(1, h, w)`` (channels first) or ``(h, w, 3)``,
          uint8 or float in ``[0, 1]``.

        Grayscale is expanded to three channels; RGBA is composited over white.

    Returns
    -------
    numpy.ndarray
        uint8 ``(h, w, 3)``.

    Raises
    ------
    ImageError
        If the file is missing, empty, not an image or corrupt, or an array has an
        unsupported shape, dtype or value range. The message names the input.
    """
    label = _describe(src)
    if isinstance(src, (str, os.PathLike, bytes, bytearray)):
        decoded = _decode_file(bytes(src) if isinstance(src, bytearray) else src, label)
        return _from_array(decoded, label)
    if isinstance(src, torch.Tensor):
        if src.is_meta:
            raise ImageError(f"image {label} is on the meta device (no data); pass real pixels")
        tensor = src.detach().cpu()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3, 4) and tensor.shape[-1] not in (3, 4):
            tensor = tensor.permute(1, 2, 0)
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return _from_array(tensor.numpy(), label)
    if isinstance(src, np.ndarray):
        return _from_array(src, label)
    if hasattr(src, "__array_interface__") or hasattr(src, "__array__"):
        mode = getattr(src, "mode", None)
        if mode is not None and mode not in ("L", "RGB", "RGBA", "1"):
            convert = getattr(src, "convert", None)
            if callable(convert):
                src = convert("RGBA" if "A" in str(mode) or mode == "P" else "RGB")
        try:
            array = np.asarray(src)
        except Exception as exc:
            raise ImageError(f"cannot read {label} as an array: {exc}") from exc
        return _from_array(array, label)
    raise ImageError(
        f"cannot load an image from {label}; give a file path, a PIL image, a numpy array "
        "(h, w, 3) or a torch tensor (3, h, w)"
    )


def expand_box_to_aspect(
    box: Any, aspect: float, height: int, width: int
) -> tuple[int, int, int, int]:
    """Grow a box around its centre to the aspect ratio ``aspect`` (width / height).

    The box only grows. It is then shifted to lie inside the ``h x w`` image
    where it fits; where it is larger than the image it sticks out on both sides
    (:func:`crop_and_resize` fills that part by edge replication).

    Parameters
    ----------
    box
        ``(x0, y0, x1, y1)`` in pixels.
    aspect
        Target width / height.
    height, width
        Image size.

    Returns
    -------
    tuple of int
        ``(x0, y0, x1, y1)``; may extend beyond the image only where it is larger than it.
    """
    try:
        values = np.asarray(
            box.detach().cpu() if isinstance(box, torch.Tensor) else box, dtype=float
        )
    except (TypeError, ValueError, NotImplementedError):
        values = np.zeros(0)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise ImageError(f"box must be four finite numbers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in values)
    shown = (x0, y0, x1, y1)
    if not (x1 > x0 and y1 > y0):
        raise ImageError(f"box {shown} is empty: it needs x0 < x1 and y0 < y1")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ImageError(
            f"box {shown} lies outside the {width}x{height} image; give pixel "
            "coordinates (x0, y0, x1, y1) inside it"
        )
    if x1 - x0 > _MAX_BOX_SCALE * width or y1 - y0 > _MAX_BOX_SCALE * height:
        raise ImageError(
            f"box {shown} is more than {_MAX_BOX_SCALE} times the {width}x{height} "
            "image; give pixel coordinates of the face in this image"
        )
    bw, bh = x1 - x0, y1 - y0
    if bw / bh < aspect:
        bw = bh * aspect
    else:
        bh = bw / aspect
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    w_px, h_px = max(1, round(bw)), max(1, round(bh))
    left, top = round(cx - w_px / 2.0), round(cy - h_px / 2.0)

    def place(start: int, size: int, limit: int) -> int:
        if size >= limit:
            return (limit - size) // 2
        return min(max(start, 0), limit - size)

    left, top = place(left, w_px, width), place(top, h_px, height)
    return left, top, left + w_px, top + h_px


def grow_box_within(
    box: tuple[float, float, float, float], scale: float, aspect: float, height: int, width: int
) -> tuple[float, float, float, float]:
    """Grow a face box ``scale`` times around its centre, to ``aspect``, as far as the image allows.

    The growth by ``scale`` stops at the image's size: a crop never reaches past the
    image only to honour the scale, so a face box that already spans the image (the
    ``full`` face mask) keeps the whole image. The box is then brought to ``aspect``
    (width / height) by growing its short side while that fits in the image, else by
    shrinking its long side down to the face box; only when the face box itself does
    not fit the aspect inside the image does the result stick out of it (and
    :func:`crop_and_resize` fills that part by edge replication).

    Parameters
    ----------
    box
        The face box ``(x0, y0, x1, y1)`` in pixels, inside the image.
    scale
        Growth factor (``> 0``).
    aspect
        Target width / height.
    height, width
        Image size.

    Returns
    -------
    tuple of float
        ``(x0, y0, x1, y1)`` centred on the face where the image allows (see
        :func:`expand_box_to_aspect` for the placement).

    Examples
    --------
    >>> grow_box_within((0, 0, 640, 640), 2.0, 1.0, 640, 640)
    (0.0, 0.0, 640.0, 640.0)
    >>> grow_box_within((0, 0, 640, 480), 2.0, 1.0, 480, 640)  # whole image, padded to a square
    (0.0, -80.0, 640.0, 560.0)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    face_w, face_h = x1 - x0, y1 - y0
    w = max(face_w, min(face_w * scale, float(width)))
    h = max(face_h, min(face_h * scale, float(height)))
    if w / h < aspect:  # too narrow: widen within the image, else lower to the face
        if h * aspect <= width:
            w = h * aspect
        else:
            w = max(float(width), face_w)
            h = max(w / aspect, face_h)
            w = h * aspect
    elif w / h > aspect:  # too wide: heighten within the image, else narrow to the face
        if w / aspect <= height:
            h = w / aspect
        else:
            h = max(float(height), face_h)
            w = max(h * aspect, face_w)
            h = w / aspect
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0

    def place(centre: float, size: float, limit: float) -> float:
        if size >= limit:
            return (limit - size) / 2.0
        return min(max(centre - size / 2.0, 0.0), limit - size)

    left, top = place(cx, w, float(width)), place(cy, h, float(height))
    return left, top, left + w, top + h


def crop_and_resize(image: Any, box: Any, height: int, width: int) -> np.ndarray:
    """Crop the region of ``box`` expanded to the target aspect and resize it.

    The box is grown around its centre to ``width / height`` (never shrunk),
    shifted to stay inside the image, padded by edge replication where it is
    larger than the image, and resized with antialiasing (bicubic).

    Parameters
    ----------
    image
        Anything :func:`load_image` accepts.
    box
        ``(x0, y0, x1, y1)`` in pixels, e.g. from
        :meth:`emo.face_masks.base.FaceMaskBase.face_box`.
    height, width
        Output size in pixels.

    Returns
    -------
    numpy.ndarray
        uint8 ``(height, width, 3)``.

    Raises
    ------
    ImageError
        If the image cannot be loaded, the box is empty or the size is not positive.
    """
    for label, size in (("height", height), ("width", width)):
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or not 0 < size <= _MAX_SIDE
        ):
            raise ImageError(
                f"output {label} must be a positive int (at most {_MAX_SIDE} pixels), got {size!r}"
            )
    array = load_image(image)
    img_h, img_w = array.shape[:2]
    x0, y0, x1, y1 = expand_box_to_aspect(box, width / height, img_h, img_w)
    tensor = torch.from_numpy(array).permute(2, 0, 1)[None].to(torch.float32)
    pad = (max(0, -x0), max(0, x1 - img_w), max(0, -y0), max(0, y1 - img_h))
    if any(pad):
        tensor = F.pad(tensor, pad, mode="replicate")
        x0, x1, y0, y1 = x0 + pad[0], x1 + pad[0], y0 + pad[2], y1 + pad[2]
    crop = tensor[:, :, y0:y1, x0:x1]
    if crop.shape[-2:] != (height, width):
        crop = F.interpolate(
            crop,
            size=(int(height), int(width)),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        )
    out = crop[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(out.numpy())
