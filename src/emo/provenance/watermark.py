"""The invisible watermark: a keyed, tiled, band-limited spread-spectrum pattern in luma.

Method
------
A 64x64 *tile* is built in the Fourier domain: every frequency of a ring (4 to 20
cycles per tile, i.e. wavelengths of 3.2 to 16 pixels) gets a keyed random phase,
and the ring is split, by a keyed permutation, into 48 disjoint groups, one per
payload bit; a bit flips the sign of its group. The tile repeats over the whole
frame and is added to the luma (the same value to R, G and B), scaled per pixel
by the local texture (weaker on flat areas, where the eye would see it) and per
frame so that the mark's RMS is 2.4 grey levels (PSNR >= 40 dB). Frames enlarged
after they were made (a small model's output upscaled so that the mark survives
re-encoding) are smooth pixel by pixel, which would hold the mark at its floor
everywhere: their texture is measured at the size they were made (``upscale``).

Detection folds the picture into one tile (the average of all tiles), whitens its
spectrum (phase only) and correlates every bit group at every cyclic shift with a
handful of FFTs. Cropping only shifts the tile, so it moves the correlation peak;
resizing changes the tile's size in pixels, which a search over scales undoes. The
statistic ``D`` (sum over the 48 groups of the squared normalised correlation) is a
chi-square with 48 degrees of freedom on unmarked content; the bits are the signs
at its peak, and the payload's CRC-16 must match.
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
_BAND = (4.0, 20.0)  # cycles per tile
_LUMA = (0.299, 0.587, 0.114)
# Candidates checked against the CRC: more of them raises the false-positive rate.
_CANDIDATES = 2
# A payload is read only at a peak that unmarked content reaches less than once in 100 videos;
# without a readable payload, the mark is reported present below once in a million.
_MAX_PEAK_P = 0.01
_PRESENCE_P = 1e-6
_CHASE_BITS = 8  # least reliable bits tried flipped (one at a time)
# Sizes tried first, on the whole picture: the original, halved, and common rescales.
_COMMON_SCALES = (1.0, 0.5, 0.75, 2 / 3, 1.5, 2.0)
_MAX_TILES = 10  # detection reads at most 10x10 tiles (640x640 original pixels) of a picture
_COARSE_TILES = 3  # the scale search looks at a 3x3-tile window around the centre


@dataclass(frozen=True)
class WatermarkResult:
    """What :meth:`Watermarker.detect` found.

    Attributes
    ----------
    found
        True when the peak is far too high for unmarked content (p <= 1e-6), or a
        payload with a valid CRC was read at a high peak (p <= 0.01).
    payload
        The payload, or ``None`` (not found, or too damaged to read).
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


def _tile_from_spectrum(spectrum: torch.Tensor) -> torch.Tensor:
    """The spatial tile ``(t, t)`` float32 with unit RMS, from its half spectrum ``(t, t/2+1)``."""
    tile: torch.Tensor = torch.fft.irfft2(spectrum, s=(TILE, TILE))
    return tile / tile.pow(2).mean().sqrt()


def _luma(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(f, h, w, 3)`` -> float32 ``(f, h, w)``."""
    x = frames.float()
    return x[..., 0] * _LUMA[0] + x[..., 1] * _LUMA[1] + x[..., 2] * _LUMA[2]


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Box mean over ``(2r+1)^2`` pixels of ``(n, h, w)``, edges replicated (running sums)."""
    size = 2 * radius + 1
    padded = F.pad(x[:, None], (radius + 1, radius, radius + 1, radius), mode="replicate")[:, 0]
    sums = padded.double().cumsum(-1)
    sums = (sums[..., size:] - sums[..., :-size]).cumsum(-2)
    return ((sums[..., size:, :] - sums[..., :-size, :]) / (size * size)).to(x.dtype)


def _activity(luma: torch.Tensor) -> torch.Tensor:
    """Local texture: RMS of the high-passed luma over 7x7 pixels, ``(f, h, w)``."""
    detail = luma - _box(luma, 1)
    return _box(detail * detail, 3).sqrt()


def _whiten(images: torch.Tensor) -> torch.Tensor:
    """Remove the local mean and divide by the local contrast: ``(n, h, w)`` -> same."""
    detail = images - _box(images, 4)
    contrast = _box(detail * detail, 4).sqrt()
    return detail / (contrast + 2.0)


def _fold(images: torch.Tensor) -> torch.Tensor:
    """Average all ``t x t`` tiles of ``(n, h, w)`` into ``(n, t, t)`` (partial tiles count)."""
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % TILE, (-w) % TILE
    values = F.pad(images, (0, pad_w, 0, pad_h))
    counts = F.pad(torch.ones_like(images[0]), (0, pad_w, 0, pad_h))
    rows, cols = (h + pad_h) // TILE, (w + pad_w) // TILE
    total = values.reshape(-1, rows, TILE, cols, TILE).sum(dim=(1, 3))
    return total / counts.reshape(rows, TILE, cols, TILE).sum(dim=(0, 2)).clamp(min=1.0)


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
        self,
        frames: Any,
        payload: Payload,
        *,
        tile: torch.Tensor | None = None,
        upscale: float = 1.0,
    ) -> torch.Tensor:
        """Return the frames with the mark added.

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)`` (numpy or torch) or float in ``[0, 1]``.
        payload
            What the mark carries.
        tile
            The tile from :meth:`tile`, when it is already at hand (a video marked clip
            by clip).
        upscale
            How many times the frames were enlarged after they were made (>= 1; 4 for
            64-pixel frames written at 256). The texture masking then measures the
            picture's texture at the made size: an enlarged picture has no pixel-scale
            texture, so measured as it is the mark would be held at its 0.25x floor
            everywhere, too weak to survive a re-encode. The mark keeps its RMS cap (2.4
            grey levels, PSNR >= 40 dB).

        Returns
        -------
        torch.Tensor
            uint8 ``(f, h, w, 3)`` on the CPU.
        """
        from emo.io.writers.base import as_video_frames

        if (
            isinstance(upscale, bool)
            or not isinstance(upscale, (int, float))
            or not math.isfinite(upscale)
            or upscale < 1.0
        ):
            raise InputError(f"watermark upscale must be a number >= 1, got {upscale!r}")
        pixels = torch.from_numpy(as_video_frames(frames))
        if tile is None:
            tile = self.tile(payload)
        luma = _luma(pixels)
        weight = self._weight_at(luma, float(upscale)) if upscale > 1.0 else None
        delta = self._delta(luma, tile, weight)[..., None]
        return (pixels.float() + delta).round_().clamp_(0, 255).to(torch.uint8)

    def tile(self, payload: Payload) -> torch.Tensor:
        """The tile ``(t, t)`` float32 (unit RMS) that carries ``payload``.

        The same tile marks every frame of a video: a mark that stays put from frame
        to frame is what a video codec keeps (a changing one is coded as noise and
        dropped).
        """
        spectra, _ = _spectra(self.key)
        signs = torch.tensor([1.0 if b else -1.0 for b in payload.to_bits()])
        return _tile_from_spectrum((spectra * signs[:, None, None]).sum(0))

    @staticmethod
    def _weight(luma: torch.Tensor) -> torch.Tensor:
        """Texture masking ``(f, h, w)``: up to 2x on busy areas, 0.25x on flat ones."""
        return (_activity(luma) / 3.0).clamp(0.25, 2.0)

    @classmethod
    def _weight_at(cls, luma: torch.Tensor, upscale: float) -> torch.Tensor:
        """:meth:`_weight` of frames enlarged ``upscale`` times, measured at their made size.

        The luma is shrunk back (bilinear, antialiased), masked there, and the mask
        enlarged again (bilinear) to ``(f, h, w)``.
        """
        h, w = luma.shape[1:]
        made = (max(1, round(h / upscale)), max(1, round(w / upscale)))
        small = F.interpolate(
            luma[:, None], size=made, mode="bilinear", align_corners=False, antialias=True
        )[:, 0]
        weight = cls._weight(small)[:, None]
        return F.interpolate(weight, size=(h, w), mode="bilinear", align_corners=False)[:, 0]

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
    def _correlate(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised correlation of every bit group at every shift.

        ``(h, w)`` -> ``(k, t, t)``, or a batch ``(n, h, w)`` -> ``(n, k, t, t)``.
        """
        spectra, counts = _spectra(self.key)
        spectrum = torch.fft.rfft2(_fold(_whiten(images.reshape(-1, *images.shape[-2:]))))
        phase = spectrum / spectrum.abs().clamp(min=1e-12)
        surfaces = torch.fft.irfft2(phase[:, None] * spectra.conj(), s=(TILE, TILE))
        # Under no mark every cosine term is uniform: variance 1/2 per frequency.
        z: torch.Tensor = surfaces * (TILE * TILE / 2) / (counts / 2).sqrt()[:, None, None]
        return z[0] if images.ndim == 2 else z

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
        smallest = TILE * 0.75 / min(h, w)
        if scales is not None:
            fixed = [s for s in scales if s >= smallest]
            found = [c for c in (self._evaluate(image, s) for s in fixed) if c is not None]
            return self._decide(found, trials=len(fixed) * TILE * TILE)
        # 1. The usual sizes (original, halved, ...) on the whole picture.
        common = [s for s in _COMMON_SCALES if s >= smallest]
        found = [c for c in (self._evaluate(image, s) for s in common) if c is not None]
        result = self._decide(found, trials=len(common) * TILE * TILE)
        if result.found:
            return result
        # 2. Any size: a coarse search on a few windows of a few tiles, then a fine one.
        grid = _scale_grid(h, w)
        ranked: list[tuple[float, float]] = []
        for scale in grid:
            windows = self._windows(image, scale, _COARSE_TILES * TILE)
            if windows:
                energy = self._correlate(torch.stack(windows)).pow(2).sum(1)
                ranked.append((float(energy.max()), scale))
        ranked.sort(reverse=True)
        fine = [
            candidate
            for _, coarse in ranked[:_CANDIDATES]
            for scale in coarse * np.exp(np.linspace(-0.012, 0.012, 7))
            if (candidate := self._evaluate(image, float(scale))) is not None
        ]
        trials = (len(common) + len(grid)) * TILE * TILE
        second = self._decide(fine, trials=trials)
        return second if second.found or second.score > result.score else result

    def _evaluate(self, image: torch.Tensor, scale: float) -> _Candidate | None:
        """The best peak of the picture (its centre, at most 10x10 tiles) at one scale."""
        h, w = image.shape
        side_h, side_w = (
            min(h, math.ceil(_MAX_TILES * TILE * scale)),
            min(w, math.ceil(_MAX_TILES * TILE * scale)),
        )
        top, left = (h - side_h) // 2, (w - side_w) // 2
        resized = _resize(image[top : top + side_h, left : left + side_w], scale)
        if resized is None:
            return None
        z = self._correlate(resized)
        energy = z.pow(2).sum(0)
        dy, dx = divmod(int(energy.argmax()), TILE)
        return _Candidate(float(energy.max()), scale, (dy, dx), z[:, dy, dx])

    @staticmethod
    def _decide(candidates: list[_Candidate], *, trials: int) -> WatermarkResult:
        """Decide from the strongest peaks: present if the peak is too high for chance.

        The payload is read at the peak (signs of the 48 readings); when its CRC fails,
        each of the eight least reliable bits is tried flipped (Chase decoding).
        """
        if not candidates:
            return WatermarkResult(False, None, 0.0, 0.0, 1.0, (0, 0))
        candidates = sorted(candidates, key=lambda c: -c.score)
        for rank, candidate in enumerate(candidates[:_CANDIDATES], start=1):
            # How likely unmarked content peaks this high somewhere (chi-square, 48 dof).
            p_peak = min(1.0, trials * _chi2_sf(candidate.score, PAYLOAD_BITS))
            if p_peak > _MAX_PEAK_P:
                continue
            payload, guesses = _read_payload(candidate.bits)
            if payload is not None:
                # ... and a random reading passes the CRC-16 once in 65536 guesses.
                p = min(1.0, rank * p_peak * guesses / 65536.0)
                return WatermarkResult(
                    True, payload, 1.0 - p, candidate.score, candidate.scale, candidate.offset
                )
        best = candidates[0]
        p_best = min(1.0, trials * _chi2_sf(best.score, PAYLOAD_BITS))
        if p_best <= _PRESENCE_P:  # present, but too damaged to read the payload
            return WatermarkResult(True, None, 1.0 - p_best, best.score, best.scale, best.offset)
        return WatermarkResult(False, None, 0.0, best.score, best.scale, best.offset)

    @staticmethod
    def _windows(image: torch.Tensor, scale: float, size: int) -> list[torch.Tensor]:
        """Up to five ``size x size`` windows (original pixels; centre and the four quarters)."""
        h, w = image.shape
        side = min(h, w, math.ceil(size * scale))
        if side < TILE * scale * 0.75:
            return []
        tops = sorted({(h - side) // 2, (h - side) // 4, 3 * (h - side) // 4})
        lefts = sorted({(w - side) // 2, (w - side) // 4, 3 * (w - side) // 4})
        places = {((h - side) // 2, (w - side) // 2)}
        places |= {
            (tops[0], lefts[0]),
            (tops[0], lefts[-1]),
            (tops[-1], lefts[0]),
            (tops[-1], lefts[-1]),
        }
        windows = [
            _resize(image[t : t + side, left : left + side], scale) for t, left in sorted(places)
        ]
        return [window for window in windows if window is not None]


@dataclass(frozen=True)
class _Candidate:
    """A correlation peak: its statistic, the scale, the shift and the bit readings ``(k,)``."""

    score: float
    scale: float
    shift: tuple[int, int]
    bits: torch.Tensor

    @property
    def offset(self) -> tuple[int, int]:
        """The crop offset modulo the tile that this shift means."""
        return ((-self.shift[0]) % TILE, (-self.shift[1]) % TILE)


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
    """Scales from 0.3 to 1.6 in 2 % steps, with 1 and 0.5 exactly; none too small to hold a tile."""
    grid = set(np.exp(np.arange(math.log(0.3), math.log(1.6), 0.02)).round(5).tolist())
    grid |= {1.0, 0.5}
    smallest = TILE * 0.75 / min(h, w)
    return tuple(sorted(s for s in grid if s >= smallest))


def _read_payload(readings: torch.Tensor) -> tuple[Payload | None, int]:
    """The payload from 48 soft readings ``(k,)`` and how many guesses it took (Chase decoding)."""
    bits = [int(v > 0) for v in readings.tolist()]
    weakest = [int(i) for i in readings.abs().argsort()[:_CHASE_BITS]]
    flips: list[tuple[int, ...]] = [()]
    # One flip only: the CRC-16 is 4 bits apart between valid payloads, so two flips
    # could turn a reading with two errors into another, wrong, valid payload.
    flips += [(i,) for i in weakest]
    for flip in flips:
        trial = list(bits)
        for i in flip:
            trial[i] ^= 1
        payload = Payload.from_bits(trial)
        if payload is not None:
            return payload, len(flips) if flip else 1
    return None, len(flips)


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution with an even ``dof`` (exact series)."""
    half = x / 2.0
    term = 1.0
    total = 1.0
    for i in range(1, dof // 2):
        term *= half / i
        total += term
    return min(1.0, math.exp(-half) * total)
