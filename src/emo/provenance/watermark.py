"""The invisible watermark: a keyed, tiled, band-limited spread-spectrum pattern in luma.

Method
------
A 64x64 *tile* is built in the Fourier domain: every frequency of a ring (3 to 14
cycles per tile, i.e. wavelengths of 4.6 to 21 pixels) gets a keyed random phase,
and the ring is split, by a keyed permutation, into 48 disjoint groups, one per
payload bit; a bit flips the sign of its group. The tile repeats over the whole
frame and is added to the luma (the same value to R, G and B), scaled per pixel
by the local texture (weaker on flat areas, where the eye would see it) and per
frame so that the mark's RMS is 2.4 grey levels (PSNR >= 40 dB).

Detection folds the picture into one tile (the average of all tiles), whitens its
spectrum (phase only) and correlates every bit group at every cyclic shift with a
handful of FFTs. Cropping only shifts the tile, so it moves the correlation peak;
resizing changes the tile's size in pixels, which a search over scales undoes. The
statistic ``D`` (sum over the 48 groups of the squared normalised correlation) is a
chi-square with 48 degrees of freedom on unmarked content; the bits are the signs
at its peak, and the payload's CRC-12 must match.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from emo.errors import InputError
from emo.provenance.payload import PAYLOAD_BITS, Payload

__all__ = ["DEFAULT_KEY", "TILE", "WatermarkResult", "Watermarker"]

TILE = 64
DEFAULT_KEY = "emo-provenance-v1"
_BAND = (3.0, 14.0)  # cycles per tile
_LUMA = (0.299, 0.587, 0.114)
# Candidates checked against the CRC: more of them raises the false-positive rate.
_CANDIDATES = 2
_COARSE_TILES = 3  # the scale search looks at a 3x3-tile window around the centre


@dataclass(frozen=True)
class WatermarkResult:
    """What :meth:`Watermarker.detect` found.

    Attributes
    ----------
    found
        True when a payload with a valid CRC was read at a significant peak.
    payload
        The payload, or ``None``.
    confidence
        ``1 - p`` where ``p`` bounds the chance that unmarked content gives this
        result (0 when nothing was found).
    score
        The detection statistic ``D`` at the best peak (about 48 on unmarked content).
    scale
        The estimated size of the frames relative to the marked original (0.5 = halved).
    offset
        The estimated crop offset ``(y, x)`` modulo the tile size, in original pixels.
    """

    found: bool
    payload: Payload | None
    confidence: float
    score: float
    scale: float
    offset: tuple[int, int]


def _key_seed(key: str | int) -> int:
    data = key.to_bytes(16, "little", signed=True) if isinstance(key, int) else key.encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


@lru_cache(maxsize=8)
def _spectra(key: str | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bit spectra ``(k, t, t/2+1)`` complex (unit phases on disjoint groups) and counts."""
    generator = torch.Generator().manual_seed(_key_seed(key))
    fy = torch.fft.fftfreq(TILE) * TILE
    fx = torch.fft.rfftfreq(TILE) * TILE
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    band = (radius >= _BAND[0]) & (radius <= _BAND[1])
    # Columns 0 and t/2 of an rfft hold their own conjugates: leave them out.
    band[:, 0] = False
    band[:, -1] = False
    phases = torch.rand(band.shape, generator=generator, dtype=torch.float64) * (2 * math.pi)
    cells = torch.nonzero(band.flatten()).flatten()
    cells = cells[torch.randperm(len(cells), generator=generator)]
    groups = torch.zeros(PAYLOAD_BITS, band.numel(), dtype=torch.float64)
    for bit in range(PAYLOAD_BITS):
        groups[bit, cells[bit::PAYLOAD_BITS]] = 1.0
    groups = groups.reshape(PAYLOAD_BITS, *band.shape)
    spectra = torch.polar(groups, phases.expand_as(groups))
    return spectra.to(torch.complex64), groups.sum(dim=(1, 2)).float()


def _tile_from(spectra: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """The spatial tile ``(t, t)`` float32, unit RMS: bit ``k``'s group times ``gains[k]``."""
    spectrum = (spectra * gains.to(torch.float32)[:, None, None]).sum(0)
    tile: torch.Tensor = torch.fft.irfft2(spectrum, s=(TILE, TILE))
    return tile / tile.pow(2).mean().sqrt()


def _luma(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(f, h, w, 3)`` -> float32 ``(f, h, w)``."""
    x = frames.float()
    return x[..., 0] * _LUMA[0] + x[..., 1] * _LUMA[1] + x[..., 2] * _LUMA[2]


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Box mean over ``(2r+1)^2`` pixels of ``(n, h, w)``, edges replicated."""
    padded = F.pad(x[:, None], (radius,) * 4, mode="replicate")
    return F.avg_pool2d(padded, 2 * radius + 1, stride=1)[:, 0]


def _activity(luma: torch.Tensor) -> torch.Tensor:
    """Local texture: RMS of the high-passed luma over 7x7 pixels, ``(f, h, w)``."""
    detail = luma - _box(luma, 1)
    return _box(detail * detail, 3).sqrt()


def _whiten(image: torch.Tensor) -> torch.Tensor:
    """Remove the local mean and divide by the local contrast: ``(h, w)`` -> ``(h, w)``."""
    detail = image - _box(image[None], 4)[0]
    contrast = _box((detail * detail)[None], 4)[0].sqrt()
    return detail / (contrast + 2.0)


def _fold(image: torch.Tensor) -> torch.Tensor:
    """Average all ``t x t`` tiles of ``(h, w)`` into one (a partial tile counts where it covers)."""
    h, w = image.shape
    pad_h, pad_w = (-h) % TILE, (-w) % TILE
    values = F.pad(image, (0, pad_w, 0, pad_h))
    counts = F.pad(torch.ones_like(image), (0, pad_w, 0, pad_h))
    shape = (values.shape[0] // TILE, TILE, values.shape[1] // TILE, TILE)
    total = values.reshape(shape).sum(dim=(0, 2))
    return total / counts.reshape(shape).sum(dim=(0, 2)).clamp(min=1.0)


class Watermarker:
    """Embeds and detects the keyed invisible watermark (see the module docstring).

    Parameters
    ----------
    key
        The secret (or, for emo's default, public) key: a different key gives an
        unrelated pattern, invisible to a detector with another key.
    strength
        RMS of the mark in grey levels per frame (2.4 keeps PSNR >= 40 dB).
    """

    def __init__(self, key: str | int = DEFAULT_KEY, strength: float = 2.4) -> None:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise InputError(f"watermark key must be a str or int, got {type(key).__name__}")
        if not (isinstance(strength, (int, float)) and 0 < strength <= 10):
            raise InputError(f"watermark strength must be in (0, 10] grey levels, got {strength!r}")
        self.key = key
        self.strength = float(strength)

    def __repr__(self) -> str:
        return f"Watermarker(strength={self.strength})"

    # -- embedding -------------------------------------------------------------------
    def embed(
        self, frames: Any, payload: Payload, *, tile: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return the frames with the mark added.

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)`` (numpy or torch) or float in ``[0, 1]``.
        payload
            What the mark carries.
        tile
            A tile from :meth:`design` (on earlier frames of the same video); by default
            one is designed for these frames.

        Returns
        -------
        torch.Tensor
            uint8 ``(f, h, w, 3)`` on the CPU.
        """
        from emo.io.writers.base import as_video_frames

        pixels = torch.from_numpy(as_video_frames(frames))
        if tile is None:
            tile = self.design(pixels, payload)
        delta = self._delta(_luma(pixels), tile)[..., None]
        return (pixels.float() + delta).round_().clamp_(0, 255).to(torch.uint8)

    def design(self, frames: Any, payload: Payload, *, rounds: int = 0) -> torch.Tensor:
        """The tile ``(t, t)`` for a video, fitted to its first frames (informed embedding).

        The content itself correlates a little with each bit's pattern, pushing some
        bits towards the wrong sign. The tile is fitted to the frames: each round
        measures every bit's margin the way the detector will, and moves amplitude
        from the bits with the widest margins to those with the narrowest (the total
        energy, hence the PSNR, stays the same).

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)``: the first frames of the video.
        payload
            What the mark carries.
        rounds
            Fitting rounds (0: all bits equally strong).
        """
        from emo.io.writers.base import as_video_frames

        luma = _luma(torch.from_numpy(as_video_frames(frames)))
        spectra, _ = _spectra(self.key)
        signs = torch.tensor([1.0 if b else -1.0 for b in payload.to_bits()])
        amplitudes = torch.ones(PAYLOAD_BITS)
        tile = _tile_from(spectra, signs * amplitudes)
        if min(luma.shape[1:]) < TILE:
            return tile
        weight = self._weight(luma)
        for _ in range(rounds):
            marked = (luma + self._delta(luma, tile, weight)).mean(0)
            margin = signs * self._correlate(marked)[:, 0, 0]
            target = margin.median().clamp(min=0.5)
            amplitudes = amplitudes * (target / margin.clamp(min=0.25)).clamp(0.6, 1.8)
            tile = _tile_from(spectra, signs * amplitudes)
        return tile

    @staticmethod
    def _weight(luma: torch.Tensor) -> torch.Tensor:
        """Texture masking ``(f, h, w)``: up to 2x on busy areas, 0.25x on flat ones."""
        return (_activity(luma) / 3.0).clamp(0.25, 2.0)

    def _delta(
        self, luma: torch.Tensor, tile: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The luma change ``(f, h, w)``: the tiled pattern, masked, at the set RMS per frame."""
        h, w = luma.shape[1:]
        pattern = tile.repeat(math.ceil(h / TILE), math.ceil(w / TILE))[:h, :w]
        mark = (self._weight(luma) if weight is None else weight) * pattern
        rms = mark.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-6)
        return (self.strength / rms).clamp(max=self.strength) * mark

    # -- detection -------------------------------------------------------------------
    def _correlate(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised correlation of every bit group at every shift: ``(h, w)`` -> ``(k, t, t)``."""
        spectra, counts = _spectra(self.key)
        spectrum = torch.fft.rfft2(_fold(_whiten(image)))
        phase = spectrum / spectrum.abs().clamp(min=1e-12)
        surfaces: torch.Tensor = torch.fft.irfft2(phase[None] * spectra.conj(), s=(TILE, TILE))
        # Under no mark every cosine term is uniform: variance 1/2 per frequency.
        return surfaces * (TILE * TILE / 2) / (counts / 2).sqrt()[:, None, None]

    def detect(self, frames: Any, *, scales: tuple[float, ...] | None = None) -> WatermarkResult:
        """Look for the mark in frames that may have been re-encoded, resized or cropped.

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)`` (numpy or torch); all frames are averaged.
        scales
            Sizes relative to the original to try; by default a search from 0.3 to 1.6.

        Returns
        -------
        WatermarkResult
            Presence, payload and confidence.
        """
        from emo.io.writers.base import as_video_frames

        pixels = torch.from_numpy(as_video_frames(frames))
        image = _luma(pixels).mean(0)
        return self.detect_luma(image, scales=scales)

    def detect_luma(
        self, image: torch.Tensor, *, scales: tuple[float, ...] | None = None
    ) -> WatermarkResult:
        """:meth:`detect` on a luma image ``(h, w)`` float (the average of the frames)."""
        h, w = image.shape
        if scales is None:
            scales = _scale_grid(h, w)
        # Coarse: each scale on a window of a few tiles around the centre.
        ranked: list[tuple[float, float]] = []
        for scale in scales:
            window = self._window(image, scale, _COARSE_TILES * TILE)
            if window is None:
                continue
            score = float(self._correlate(window).pow(2).sum(0).max())
            ranked.append((score, scale))
        if not ranked:
            return WatermarkResult(False, None, 0.0, 0.0, 1.0, (0, 0))
        ranked.sort(reverse=True)
        # Fine: around the best coarse scales, on the whole picture.
        best: list[tuple[float, float, tuple[int, int], torch.Tensor]] = []
        for _, coarse in ranked[:_CANDIDATES]:
            for scale in coarse * np.exp(np.linspace(-0.012, 0.012, 7)):
                resized = _resize(image, float(scale))
                if resized is None:
                    continue
                z = self._correlate(resized)
                energy = z.pow(2).sum(0)
                peak = int(energy.argmax())
                dy, dx = divmod(peak, TILE)
                best.append((float(energy.max()), float(scale), (dy, dx), z[:, dy, dx]))
        best.sort(key=lambda item: -item[0])
        trials = len(scales) * TILE * TILE
        for score, scale, (dy, dx), z in best[:_CANDIDATES]:
            payload = Payload.from_bits([int(v > 0) for v in z.tolist()])
            if payload is None:
                continue
            # P(chi2_48 >= score) over every trial, times the CRC's 1/4096 per candidate.
            p_peak = min(1.0, trials * _chi2_sf(score, PAYLOAD_BITS))
            p = min(1.0, _CANDIDATES * p_peak / 4096.0)
            offset = ((-dy) % TILE, (-dx) % TILE)
            return WatermarkResult(True, payload, 1.0 - p, score, scale, offset)
        score, scale, (dy, dx), _ = best[0]
        return WatermarkResult(False, None, 0.0, score, scale, ((-dy) % TILE, (-dx) % TILE))

    @staticmethod
    def _window(image: torch.Tensor, scale: float, size: int) -> torch.Tensor | None:
        """The centre ``size x size`` (original pixels) of ``image`` resized by ``1/scale``."""
        h, w = image.shape
        side = min(h, w, math.ceil(size * scale))
        if side < TILE * scale * 0.75:
            return None
        top, left = (h - side) // 2, (w - side) // 2
        return _resize(image[top : top + side, left : left + side], scale)


def _resize(image: torch.Tensor, scale: float) -> torch.Tensor | None:
    """Resize ``(h, w)`` by ``1/scale`` (back to the original's pixel size)."""
    if abs(scale - 1.0) < 1e-6:
        return image
    h, w = image.shape
    size = (max(1, round(h / scale)), max(1, round(w / scale)))
    if min(size) < TILE // 2:
        return None
    return F.interpolate(
        image[None, None], size=size, mode="bilinear", align_corners=False, antialias=scale > 1
    )[0, 0]


def _scale_grid(h: int, w: int) -> tuple[float, ...]:
    """Scales from 0.3 to 1.6 in 1.5 % steps, with 1 and 0.5 exactly; none too small to hold a tile."""
    grid = set(np.exp(np.arange(math.log(0.3), math.log(1.6), 0.015)).round(5).tolist())
    grid |= {1.0, 0.5}
    smallest = TILE * 0.75 / min(h, w)
    return tuple(sorted(s for s in grid if s >= smallest))


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution with an even ``dof`` (exact series)."""
    half = x / 2.0
    term = 1.0
    total = 1.0
    for i in range(1, dof // 2):
        term *= half / i
        total += term
    return min(1.0, math.exp(-half) * total)
