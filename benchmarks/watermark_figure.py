"""Draw the docs figure: zoomed crops of flat areas, unmarked, marked, and their difference.

Marks ``examples/portrait.png`` (512x512) as one video frame, then cuts 64x64 crops
from a flat area (the backdrop) and a smooth one (the cheek), enlarges them 4x with
nearest-neighbour pixels and writes, side by side: unmarked, marked, and the
difference amplified 10x around mid-grey. Prints the PSNR of the whole frame and
of each crop.

::

    python benchmarks/watermark_figure.py docs/_static/watermark_flat_zoom.png
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from emo.provenance.payload import Payload
from emo.provenance.watermark import Watermarker

PORTRAIT = Path(__file__).resolve().parents[1] / "examples" / "portrait.png"
CROPS = {"backdrop": (24, 24), "cheek": (236, 176)}  # (top, left) of 64x64 crops
ZOOM, GAP = 4, 8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    with av.open(str(PORTRAIT)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    marked = Watermarker().embed(image[None], Payload("0.1.0", 12345)).numpy()[0]
    print(f"whole frame: PSNR {psnr(image, marked):.1f} dB")
    rows = []
    for name, (top, left) in CROPS.items():
        a = image[top : top + 64, left : left + 64]
        b = marked[top : top + 64, left : left + 64]
        diff = np.clip(128 + 10 * (b.astype(np.int16) - a.astype(np.int16)), 0, 255).astype(
            np.uint8
        )
        print(f"{name}: PSNR {psnr(a, b):.1f} dB, max |change| {np.abs(b.astype(int) - a).max()}")
        panels = [np.kron(p, np.ones((ZOOM, ZOOM, 1), np.uint8)) for p in (a, b, diff)]
        gap = np.full((panels[0].shape[0], GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    spacer = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    figure = np.ascontiguousarray(np.concatenate([rows[0], spacer, rows[1]], axis=0))
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = figure.shape[1], figure.shape[0], "rgb24"
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(figure, format="rgb24")
    data = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])
    args.output.write_bytes(data)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
