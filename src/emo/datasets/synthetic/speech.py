"""Speech- and song-like audio built from vowel and consonant units, with the visemes it implies.

A track is a sequence of :class:`Unit` s (vowels, nasals, liquids, fricatives,
plosive closures and silences). Voiced units are a sum of harmonics of a pitch
contour shaped by three formant resonances; fricatives and plosive bursts are
band-limited noise. Each unit also carries the mouth shape it is spoken with
(its viseme): opening and width, so the mouth of the rendered head follows the
audio by construction. Everything is numpy and deterministic per seed.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from emo.errors import InputError

__all__ = ["PHONEMES", "AudioTrack", "Mode", "Phoneme", "Unit", "mouth_tracks", "synthesize_audio"]

Mode = Literal["speech", "singing"]


@dataclasses.dataclass(frozen=True)
class Phoneme:
    """How one unit sounds and looks.

    ``formants`` in Hz (voiced units), ``noise_band`` in Hz (unvoiced),
    ``voiced``/``noise`` are relative amplitudes, ``opening``/``width`` the
    viseme in ``[0, 1]``.
    """

    formants: tuple[float, float, float]
    voiced: float
    noise: float
    noise_band: tuple[float, float]
    opening: float
    width: float


PHONEMES: dict[str, Phoneme] = {
    "a": Phoneme((800, 1250, 2600), 1.0, 0.0, (0, 0), 1.0, 0.6),
    "e": Phoneme((500, 1900, 2600), 0.9, 0.0, (0, 0), 0.55, 0.85),
    "i": Phoneme((300, 2300, 3000), 0.8, 0.0, (0, 0), 0.3, 1.0),
    "o": Phoneme((520, 900, 2500), 0.95, 0.0, (0, 0), 0.75, 0.3),
    "u": Phoneme((320, 780, 2300), 0.8, 0.0, (0, 0), 0.4, 0.15),
    "m": Phoneme((260, 1000, 2200), 0.35, 0.0, (0, 0), 0.0, 0.5),
    "l": Phoneme((360, 1250, 2700), 0.5, 0.0, (0, 0), 0.3, 0.6),
    "f": Phoneme((0, 0, 0), 0.0, 0.25, (1800, 7000), 0.08, 0.6),
    "s": Phoneme((0, 0, 0), 0.0, 0.3, (4000, 7800), 0.12, 0.85),
    "p": Phoneme((0, 0, 0), 0.0, 0.5, (500, 4000), 0.0, 0.5),  # closure, then a burst
    "_": Phoneme((0, 0, 0), 0.0, 0.0, (0, 0), 0.0, 0.5),  # silence
}
_VOWELS = ("a", "e", "i", "o", "u")
_CONSONANTS = ("m", "l", "f", "s", "p")
_BURST = 0.02  # seconds of noise at the end of a plosive closure


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of a track: ``phoneme`` from ``start`` to ``end`` seconds at ``amplitude``."""

    phoneme: str
    start: float
    end: float
    amplitude: float


@dataclasses.dataclass(frozen=True)
class AudioTrack:
    """A synthetic track: the waveform and the units it was made from.

    Attributes
    ----------
    waveform
        ``(samples,)`` float32 mono in ``[-1, 1]``.
    sample_rate
        Hz.
    units
        Consecutive units covering ``[0, duration)``.
    mode, seed
        How it was made.
    visemes
        ``(opening, width)`` of each unit when the track brings its own (a speech
        engine's phones, :func:`~emo.datasets.synthetic.voice_track.voice_track`);
        ``None``: each unit's :data:`PHONEMES` entry.
    source
        JSON-ready record of where the track came from (engine, voice, split, text),
        written into the clip's truth; ``None`` for the formant synthesiser.
    """

    waveform: np.ndarray
    sample_rate: int
    units: tuple[Unit, ...]
    mode: Mode
    seed: int
    visemes: tuple[tuple[float, float], ...] | None = None
    source: dict[str, Any] | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(self.waveform.shape[0] / self.sample_rate)


def _plan(rng: np.random.Generator, duration: float, mode: Mode) -> list[Unit]:
    """Draw words/notes and pauses until ``duration`` is filled."""
    units: list[Unit] = []
    t = float(rng.uniform(0.1, 0.4))
    units.append(Unit("_", 0.0, t, 0.0))
    phrase_left = int(rng.integers(2, 6))
    while t < duration:
        syllables = int(rng.integers(1, 4)) if mode == "speech" else int(rng.integers(2, 5))
        for _ in range(syllables):
            if rng.uniform() < (0.7 if mode == "speech" else 0.35):
                c = str(rng.choice(_CONSONANTS))
                d = float(rng.uniform(0.06, 0.12))
                units.append(Unit(c, t, t + d, float(rng.uniform(0.6, 1.0))))
                t += d
            v = str(rng.choice(_VOWELS))
            d = float(rng.uniform(0.1, 0.28) if mode == "speech" else rng.uniform(0.35, 1.0))
            units.append(Unit(v, t, t + d, float(rng.uniform(0.5, 1.0))))
            t += d
        phrase_left -= 1
        if phrase_left == 0:
            pause = float(rng.uniform(0.4, 0.9))
            phrase_left = int(rng.integers(2, 6))
        else:
            pause = float(rng.uniform(0.06, 0.3))
        units.append(Unit("_", t, t + pause, 0.0))
        t += pause
    # Cut at the duration; the last unit is shortened, later ones dropped.
    out = [u for u in units if u.start < duration]
    last = out[-1]
    out[-1] = Unit(last.phoneme, last.start, duration, last.amplitude)
    return out


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average (zero delay), edges padded with the edge value."""
    if width <= 1:
        return x
    pad = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    c = np.concatenate([[0.0], np.cumsum(pad)])
    return np.asarray((c[width:] - c[:-width]) / width, dtype=np.float64)


def _pitch(
    rng: np.random.Generator, units: list[Unit], idx: np.ndarray, sr: int, mode: Mode
) -> np.ndarray:
    """Pitch contour in Hz per sample."""
    n = idx.shape[0]
    base = float(rng.uniform(95, 240))
    per_unit = np.empty(len(units))
    if mode == "speech":
        # Declination over each phrase, jitter per syllable.
        level = 1.15
        for k, u in enumerate(units):
            if u.phoneme == "_" and u.end - u.start > 0.35:
                level = float(rng.uniform(1.05, 1.25))
            level *= 0.985
            per_unit[k] = base * level * float(rng.uniform(0.93, 1.07))
        f0 = _smooth(per_unit[idx], int(0.05 * sr))
    else:
        scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
        for k in range(len(units)):
            per_unit[k] = base * 0.8 * 2.0 ** (float(rng.choice(scale)) / 12.0)
        f0 = _smooth(per_unit[idx], int(0.04 * sr))
        # Vibrato that fades in over each note.
        t = np.arange(n) / sr
        starts = np.array([u.start for u in units])[idx]
        depth = 0.03 * np.clip((t - starts - 0.15) / 0.2, 0.0, 1.0)
        f0 = f0 * (1.0 + depth * np.sin(2 * np.pi * float(rng.uniform(5.0, 6.5)) * t))
    return np.asarray(f0, dtype=np.float64)


def synthesize_audio(
    seed: int,
    duration: float,
    *,
    mode: Mode = "speech",
    sample_rate: int = 16000,
) -> AudioTrack:
    """Synthesise a speech- or song-like track.

    Parameters
    ----------
    seed
        Non-negative integer; the same arguments always give the same samples.
    duration
        Seconds (> 0).
    mode
        ``"speech"``: short syllables, consonants, falling pitch per phrase.
        ``"singing"``: sustained vowels on notes of a scale (wider pitch range), vibrato.
    sample_rate
        Hz (at least 8000).

    Returns
    -------
    AudioTrack
        ``waveform`` is ``(round(duration * sample_rate),)`` float32, peak 0.8.

    Raises
    ------
    InputError
        On a bad seed, duration, mode or sample rate.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"audio seed must be a non-negative int, got {seed!r}")
    if not duration > 0 or not np.isfinite(duration):
        raise InputError(f"duration must be a positive number of seconds, got {duration!r}")
    if mode not in ("speech", "singing"):
        raise InputError(f"mode must be 'speech' or 'singing', got {mode!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 8000:
        raise InputError(f"sample_rate must be an int >= 8000 Hz, got {sample_rate!r}")
    rng = np.random.default_rng([seed, 0 if mode == "speech" else 1, 7])
    sr = sample_rate
    units = _plan(rng, float(duration), mode)
    n = round(duration * sr)
    starts = np.array([round(u.start * sr) for u in units])
    idx = np.searchsorted(starts, np.arange(n), side="right") - 1
    ph = [PHONEMES[u.phoneme] for u in units]
    amp = np.array([u.amplitude for u in units])

    f0 = _pitch(rng, units, idx, sr, mode)
    ramp = int(0.015 * sr)
    voiced = _smooth((np.array([p.voiced for p in ph]) * amp)[idx], ramp)
    formants = [
        _smooth(np.array([p.formants[j] or 500.0 for p in ph])[idx], int(0.03 * sr))
        for j in range(3)
    ]
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = np.zeros(n)
    gains, widths = (1.0, 0.5, 0.25), (90.0, 110.0, 160.0)
    for k in range(1, int(0.45 * sr / 80) + 1):
        fk = k * f0
        env = sum(
            g / (1.0 + ((fk - fj) / bw) ** 2)
            for g, fj, bw in zip(gains, formants, widths, strict=True)
        )
        env = env * (fk < 0.45 * sr) / k**0.5
        if not env.any():
            break
        wave += env * np.sin(k * phase)
    wave *= voiced / max(float(np.abs(wave).max()), 1e-9) * 0.9

    noise = rng.standard_normal(n)
    for u, p in zip(units, ph, strict=True):
        if p.noise <= 0:
            continue
        a, b = round(u.start * sr), round(u.end * sr)
        if u.phoneme == "p":
            a = max(a, b - round(_BURST * sr))
        seg = noise[a:b]
        if seg.size < 4:
            continue
        spec = np.fft.rfft(seg)
        freqs = np.fft.rfftfreq(seg.size, 1 / sr)
        spec[(freqs < p.noise_band[0]) | (freqs > p.noise_band[1])] = 0
        band = np.fft.irfft(spec, seg.size)
        band *= p.noise * u.amplitude / max(float(np.abs(band).max()), 1e-9)
        band *= np.hanning(seg.size) ** 0.5
        wave[a:b] += band
    wave *= 0.8 / max(float(np.abs(wave).max()), 1e-9)
    return AudioTrack(wave.astype(np.float32), sr, tuple(units), mode, seed)


def mouth_tracks(
    track: AudioTrack, fps: float | Fraction, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ground-truth mouth per video frame, from the units (visemes) and their loudness.

    Frame ``i`` shows the mean viseme of ``[i / fps, (i + 1) / fps)``, opened in
    proportion to the unit's amplitude, smoothed over neighbouring frames
    (coarticulation, a symmetric kernel: no delay).

    Returns
    -------
    tuple of numpy.ndarray
        ``opening`` and ``width``, each ``(f,)`` float64 in ``[0, 1]``.
    """
    fps = Fraction(fps).limit_denominator(1_000_000)
    sr = track.sample_rate
    n = track.waveform.shape[0]
    starts = np.array([round(u.start * sr) for u in track.units])
    idx = np.searchsorted(starts, np.arange(n), side="right") - 1
    if track.visemes is not None:
        shapes = np.array(track.visemes, dtype=np.float64).reshape(-1, 2)
    else:
        shapes = np.array(
            [(PHONEMES[u.phoneme].opening, PHONEMES[u.phoneme].width) for u in track.units]
        )
    amp = np.array([u.amplitude for u in track.units])
    opening = (shapes[:, 0] * (0.45 + 0.55 * amp))[idx]
    width = shapes[:, 1][idx]
    out = []
    for per_sample, rest in ((opening, 0.0), (width, 0.5)):
        c = np.concatenate([[0.0], np.cumsum(per_sample)])
        edges = np.array([round(i * Fraction(sr) / fps) for i in range(num_frames + 1)])
        edges = np.minimum(edges, n)
        counts = edges[1:] - edges[:-1]
        frames = np.where(counts > 0, (c[edges[1:]] - c[edges[:-1]]) / np.maximum(counts, 1), rest)
        padded = np.pad(frames, 1, mode="edge")
        out.append(np.clip(0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:], 0.0, 1.0))
    return out[0], out[1]
