"""load_image from files (PyAV), arrays, tensors and PIL; crop_and_resize."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from emo.errors import ImageError
from emo.io.image import crop_and_resize, expand_box_to_aspect, load_image


def encode(array: np.ndarray, path: Path, codec: str, pix_fmt: str) -> Path:
    """Write one image file with FFmpeg's image encoders (no Pillow needed)."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = array.shape[1], array.shape[0]
    ctx.pix_fmt = pix_fmt
    ctx.time_base = 1  # type: ignore[assignment]
    fmt = {3: "rgb24", 4: "rgba"}[array.shape[2]] if array.ndim == 3 else "gray"
    frame = av.VideoFrame.from_ndarray(array, format=fmt)
    path.write_bytes(b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)]))
    return path


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_png_round_trip_is_exact(rgb: np.ndarray, tmp_path: Path) -> None:
    path = encode(rgb, tmp_path / "a.png", "png", "rgb24")
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert np.array_equal(out, rgb)
    assert np.array_equal(load_image(str(path)), rgb)
    assert np.array_equal(load_image(path.read_bytes()), rgb)


def test_jpeg_and_webp(tmp_path: Path) -> None:
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None]
    smooth[..., 1] = 128
    jpg = encode(smooth, tmp_path / "a.jpg", "mjpeg", "yuvj444p")
    assert np.abs(load_image(jpg).astype(int) - smooth).mean() < 3
    webp = encode(smooth, tmp_path / "a.webp", "libwebp", "yuv420p")
    assert load_image(webp).shape == (32, 48, 3)


def test_rgba_file_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255
    rgba[0, 1, 3] = 0
    out = load_image(encode(rgba, tmp_path / "a.png", "png", "rgba"))
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]


def test_grayscale_file_is_expanded(tmp_path: Path) -> None:
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    out = load_image(encode(gray, tmp_path / "g.png", "png", "gray"))
    assert out.shape == (4, 4, 3) and np.array_equal(out[..., 1], gray)


def test_arrays_and_tensors(rgb: np.ndarray) -> None:
    assert np.array_equal(load_image(rgb), rgb)
    assert np.array_equal(load_image(rgb / 255.0), rgb)
    assert np.array_equal(load_image(torch.from_numpy(rgb).permute(2, 0, 1)), rgb)
    assert np.array_equal(load_image(torch.from_numpy(rgb)), rgb)
    assert np.array_equal(load_image(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255), rgb)
    gray = load_image(rgb[..., 0])
    assert gray.shape == (24, 32, 3)
    rgba = np.concatenate([rgb, np.zeros((24, 32, 1), np.uint8)], axis=-1)
    assert (load_image(rgba) == 255).all()


def test_pil_image_duck_typed(rgb: np.ndarray) -> None:
    image = pytest.importorskip("PIL.Image")
    assert np.array_equal(load_image(image.fromarray(rgb)), rgb)
    assert load_image(image.fromarray(rgb).convert("P")).shape == (24, 32, 3)
    assert load_image(image.fromarray(rgb).convert("L")).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.png", "does not exist"),
        (lambda p: p, "is a folder"),
        (lambda p: (p / "empty.png", (p / "empty.png").write_bytes(b""))[0], "empty file"),
        (lambda p: (p / "x.png", (p / "x.png").write_bytes(b"hello" * 50))[0], "cannot decode"),
    ],
)
def test_file_errors_name_the_input(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(rgb: np.ndarray, tmp_path: Path) -> None:
    path = encode(rgb, tmp_path / "a.png", "png", "rgb24")
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageError):
        load_image(path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.full((4, 4, 3), 2.0), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), np.int64), "dtype"),
        (12, "cannot load an image"),
    ],
)
def test_array_errors(value: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(value)


def test_expand_box_to_aspect() -> None:
    # A tall box becomes square around its centre.
    assert expand_box_to_aspect((40, 20, 60, 80), 1.0, 100, 100) == (20, 20, 80, 80)
    # Shifted inside the image when it would stick out.
    assert expand_box_to_aspect((0, 0, 10, 40), 1.0, 100, 100) == (0, 0, 40, 40)
    # Larger than the image: centred, sticking out on both sides.
    x0, y0, x1, y1 = expand_box_to_aspect((0, 0, 10, 10), 4.0, 20, 20)
    assert (x1 - x0, y1 - y0) == (40, 10) and x0 == -10


def test_crop_and_resize() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255
    out = crop_and_resize(image, (90, 40, 110, 60), 64, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out.min() >= 250  # exactly the white square, scaled up
    wide = crop_and_resize(image, (90, 40, 110, 60), 32, 64)
    assert wide.shape == (32, 64, 3)
    assert wide[16, 0].max() < 5 and wide[16, 32].min() > 250
    # A box bigger than the image is padded by edge replication, not black.
    bright = np.full((10, 10, 3), 200, np.uint8)
    padded = crop_and_resize(bright, (0, 0, 10, 10), 8, 32)
    assert (padded == 200).all()
    with pytest.raises(ImageError, match="empty"):
        crop_and_resize(image, (5, 5, 5, 9), 8, 8)
    with pytest.raises(ImageError, match="positive"):
        crop_and_resize(image, (0, 0, 5, 5), 0, 8)
