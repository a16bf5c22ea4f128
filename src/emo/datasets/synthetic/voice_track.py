"""Tracks spoken or sung by real speech engines, with the mouth truth from their phone timing.

:func:`voice_track` fills a duration with utterances of one :class:`~emo.datasets.synthetic.voices.Voice`
(varied rate, pitch and loudness, pauses of several lengths between them), maps every
phone the engine reports to its visemes (:mod:`emo.datasets.synthetic.visemes`) and
degrades the sum with :func:`~emo.datasets.synthetic.augment.augment_audio`. The result is
an :class:`~emo.datasets.synthetic.speech.AudioTrack` whose units carry their visemes, so
:func:`~emo.datasets.synthetic.make_clip` draws a head that mouths what was said.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emo.datasets.synthetic.augment import AugmentSettings, augment_audio
from emo.datasets.synthetic.engines import EspeakNG, Festival, Utterance
from emo.datasets.synthetic.phone_timing import PhoneSegment
from emo.datasets.synthetic.speech import AudioTrack, Mode, Unit
from emo.datasets.synthetic.texts import sentence, song_syllables
from emo.datasets.synthetic.visemes import visemes_of
from emo.datasets.synthetic.voices import SPLIT_VERSION, Voice
from emo.errors import InputError

__all__ = ["voice_track"]

_NOTES = ("C", "D", "E", "F", "G", "A", "B")
_MAJOR = (0, 2, 4, 5, 7, 9, 11, 12)


def _resampled(utt: Utterance, rate: int) -> np.ndarray:
    import torch

    from emo.audio.resampling import resample

    wave = torch.from_numpy(np.ascontiguousarray(utt.waveform, dtype=np.float32))
    out = resample(wave, utt.sample_rate, rate).numpy()
    return np.asarray(out, dtype=np.float64)


def _espeak_speech(voice: Voice, rng: np.random.Generator) -> tuple[Utterance, dict[str, Any]]:
    prosody = {
        "rate": int(rng.integers(110, 231)),
        "pitch": int(rng.integers(25, 76)),
        "pitch_range": int(rng.integers(20, 91)),
        "volume": int(rng.integers(70, 141)),
    }
    text = sentence(rng, voice.script)
    utt = EspeakNG().speak(
        text,
        voice.name,
        rate=prosody["rate"],
        pitch=prosody["pitch"],
        pitch_range=prosody["pitch_range"],
        volume=prosody["volume"],
    )
    return utt, {"text": text, **prosody}


def _espeak_song(voice: Voice, rng: np.random.Generator) -> tuple[list[Utterance], dict[str, Any]]:
    """A phrase of notes: one syllable per call, flat pitch (range 0) on a major scale."""
    count = int(rng.integers(3, 7))
    syllables = song_syllables(rng, voice.script, count)
    base, rate = int(rng.integers(15, 45)), int(rng.integers(80, 111))
    pitches = [base + 3 * _MAJOR[int(rng.integers(len(_MAJOR)))] for _ in syllables]
    engine = EspeakNG()
    notes = [
        _trimmed(engine.speak(s, voice.name, rate=rate, pitch=p, pitch_range=0))
        for s, p in zip(syllables, pitches, strict=True)
    ]
    return notes, {"text": " ".join(syllables), "pitches": pitches, "rate": rate}


def _trimmed(utt: Utterance) -> Utterance:
    """The utterance cut 30 ms after its last spoken phone (espeak-ng ends on a long pause)."""
    spoken = [s for s in utt.segments if s.ipa]
    if not spoken:
        return utt
    end = min(spoken[-1].end + 0.03, utt.duration)
    n = round(end * utt.sample_rate)
    kept = tuple(
        PhoneSegment(s.ipa, s.start, min(s.end, end), s.phone)
        for s in utt.segments
        if s.start < end
    )
    return Utterance(utt.waveform[:n], utt.sample_rate, kept, utt.raw)


def _festival_speech(voice: Voice, rng: np.random.Generator) -> tuple[Utterance, dict[str, Any]]:
    stretch = float(rng.uniform(0.8, 1.35))
    f0 = float(rng.uniform(85, 190))
    text = sentence(rng, voice.script)
    utt = Festival().speak(text, voice.name, phoneset=voice.phoneset, stretch=stretch, f0_mean=f0)
    return utt, {"text": text, "stretch": round(stretch, 3), "f0_mean": round(f0, 1)}


def _festival_song(voice: Voice, rng: np.random.Generator) -> tuple[Utterance, dict[str, Any]]:
    count = int(rng.integers(3, 7))
    syllables = song_syllables(rng, voice.script, count)
    bpm = int(rng.integers(50, 91))
    octave = int(rng.integers(2, 4))
    parts = []
    for word in syllables:
        note = _NOTES[int(rng.integers(len(_NOTES)))]
        beats = float(rng.choice([0.5, 0.75, 1.0, 1.5]))
        parts.append(
            f'<PITCH NOTE="{note}{octave}"><DURATION BEATS="{beats}">{word}</DURATION></PITCH>'
        )
        if rng.uniform() < 0.15:
            parts.append(f'<REST BEATS="{float(rng.choice([0.5, 1.0]))}"></REST>')
    xml = (
        '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
        f'"Singing.v0_1.dtd" []>\n<SINGING BPM="{bpm}">\n' + "\n".join(parts) + "\n</SINGING>\n"
    )
    utt = Festival().sing(xml, voice.name, phoneset=voice.phoneset)
    return utt, {"text": " ".join(syllables), "bpm": bpm}


def _utterances(
    voice: Voice, rng: np.random.Generator, mode: Mode
) -> tuple[list[Utterance], dict[str, Any]]:
    if voice.engine == "espeak-ng":
        if mode == "singing":
            return _espeak_song(voice, rng)
        utt, info = _espeak_speech(voice, rng)
        return [utt], info
    utt, info = (_festival_song if mode == "singing" else _festival_speech)(voice, rng)
    return [utt], info


def _units(
    segments: list[PhoneSegment], clean: np.ndarray, sr: int, duration: float, levels: list[float]
) -> tuple[list[Unit], list[tuple[float, float]]]:
    """Units (one per viseme) covering ``[0, duration)``; gaps between phones are silence."""
    units: list[Unit] = []
    shapes: list[tuple[float, float]] = []
    t = 0.0
    loud = float(np.sqrt(np.mean(clean[np.abs(clean) > 0.02] ** 2))) if clean.size else 0.0
    for seg, level in zip(segments, levels, strict=True):
        if seg.start >= duration:
            break
        if seg.start > t + 1e-6:
            units.append(Unit("_", t, seg.start, 0.0))
            shapes.append((0.0, 0.5))
        start, end = max(seg.start, t), min(seg.end, duration)
        if end <= start:
            continue
        a, b = round(start * sr), max(round(end * sr), round(start * sr) + 1)
        rms = float(np.sqrt(np.mean(clean[a:b] ** 2))) if b <= clean.size else 0.0
        relative = float(np.clip(np.sqrt(rms / max(loud, 1e-9)), 0.3, 1.0))
        amplitude = level * relative if seg.ipa else 0.0
        length = end - start
        for fraction, viseme in visemes_of(seg.ipa):
            stop = start + fraction * length
            units.append(Unit(seg.ipa or "_", start, stop, amplitude))
            shapes.append((viseme.opening, viseme.width))
            start = stop
        t = end
    if t < duration:
        units.append(Unit("_", t, duration, 0.0))
        shapes.append((0.0, 0.5))
    return units, shapes


def voice_track(
    voice: Voice,
    seed: int,
    duration: float,
    *,
    mode: Mode = "speech",
    sample_rate: int = 16000,
    augment: AugmentSettings | None = None,
    clean: bool = False,
) -> AudioTrack:
    """``duration`` seconds of ``voice`` speaking (or singing), with the mouth truth.

    Utterances follow each other after a lead-in of 0.1-0.5 s, separated by short
    (0.08-0.4 s) or long (0.5-1.2 s, one in three) pauses; each has its own rate, pitch
    and loudness. The last one is cut at ``duration``.

    Parameters
    ----------
    voice
        The speaker (:func:`~emo.datasets.synthetic.voices.voice_catalogue`).
    seed
        Non-negative int: the text, prosody, pauses and augmentation (the engines are
        deterministic, so the same seed gives the same track).
    duration
        Seconds (> 0).
    mode
        ``"speech"`` or ``"singing"`` (for voices that sing).
    sample_rate
        Hz of the returned track.
    augment
        Augmentation settings (:class:`~emo.datasets.synthetic.augment.AugmentSettings`
        by default).
    clean
        Skip augmentation (the engine's own audio, peak 0.8).

    Returns
    -------
    AudioTrack
        Units with their visemes (``visemes``) and a ``source`` record: the voice, its
        split, every utterance's text and prosody, and the augmentation.

    Raises
    ------
    InputError
        On a bad seed, duration or mode.
    SpeechEngineError
        When the voice's engine is not installed or fails.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"voice track seed must be a non-negative int, got {seed!r}")
    if not duration > 0 or not np.isfinite(duration):
        raise InputError(f"duration must be a positive number of seconds, got {duration!r}")
    if mode == "singing" and not voice.sings:
        raise InputError(f"voice {voice.key} does not sing; choose mode='speech'")
    rng = np.random.default_rng([seed, 0 if mode == "speech" else 1, 41])
    sr = sample_rate
    n = round(duration * sr)
    audio = np.zeros(n)
    segments: list[PhoneSegment] = []
    levels: list[float] = []
    said: list[dict[str, Any]] = []
    t = float(rng.uniform(0.1, 0.5))
    while t < duration:
        utterances, info = _utterances(voice, rng, mode)
        level = float(rng.uniform(0.55, 1.0))
        said.append({"start": round(t, 4), "level": round(level, 3), **info})
        for k, utt in enumerate(utterances):
            wave = _resampled(utt, sr)
            wave *= 0.8 * level / max(float(np.abs(wave).max()), 1e-9)
            a = round(t * sr)
            if a >= n:
                break
            audio[a : a + wave.size] += wave[: n - a]
            for s in utt.segments:
                segments.append(PhoneSegment(s.ipa, s.start + t, s.end + t, s.phone))
                levels.append(level)
            t += utt.duration
            if mode == "singing" and k + 1 < len(utterances):
                t += (
                    float(rng.uniform(0.0, 0.06))
                    if rng.uniform() > 0.2
                    else float(rng.uniform(0.3, 0.8))
                )
        t += (
            float(rng.uniform(0.5, 1.2)) if rng.uniform() < 1 / 3 else float(rng.uniform(0.08, 0.4))
        )
    units, shapes = _units(segments, audio, sr, duration, levels)
    record: dict[str, Any] = {}
    waveform = audio.astype(np.float32)
    if not clean:
        waveform, record = augment_audio(audio, sr, seed, augment)
    source = {
        "engine": voice.engine,
        "voice": voice.name,
        "language": voice.language,
        "split": voice.split,
        "heldout_by": voice.heldout_by,
        "split_version": SPLIT_VERSION,
        "utterances": said,
        "augmentation": record,
    }
    return AudioTrack(waveform, sr, tuple(units), mode, seed, visemes=tuple(shapes), source=source)
