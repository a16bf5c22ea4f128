"""Run Debian's speech synthesisers (espeak-ng, festival) and read back their phone timing.

These engines make training data only: nothing at ``pip install`` or inference needs
them, and this module imports without them. A call that needs a missing engine raises
:class:`~emo.errors.SpeechEngineError` naming the engine and the ``apt-get`` command.

- :class:`EspeakNG` drives ``libespeak-ng`` through ``ctypes``: synchronous synthesis with
  phoneme events in IPA (``espeak_SetSynthCallback``), so every phone arrives with its
  audio position; rate, pitch, pitch range and volume are the library's parameters.
- :class:`Festival` runs ``festival -b`` on a small Scheme script that synthesises the
  text (or a song in festival's singing mode) and saves the wave and the segment times
  (``utt.save.segs``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from emo.datasets.synthetic.phone_timing import PhoneSegment, espeak_segments, festival_segments
from emo.errors import SpeechEngineError

__all__ = ["APT_PACKAGES", "EspeakNG", "Festival", "Utterance"]

#: The Debian packages that provide each engine and the festival voices used.
APT_PACKAGES = {
    "espeak-ng": "espeak-ng",
    "festival": (
        "festival festlex-cmu festlex-poslex festvox-kallpc16k festvox-kdlpc16k "
        "festvox-us-slt-hts festvox-ca-ona-hts festvox-italp16k festvox-itapc16k "
        "festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita festvox-czech-machac "
        "festvox-ru"
    ),
}


def _missing(engine: str, detail: str) -> SpeechEngineError:
    return SpeechEngineError(
        f"the speech engine {engine} is needed to make this training data but {detail}; "
        f"install it with: apt-get install -y {APT_PACKAGES[engine]}"
    )


@dataclasses.dataclass(frozen=True)
class Utterance:
    """What an engine said: ``waveform`` float32 ``(samples,)`` at ``sample_rate``, its phones.

    ``raw`` is the engine's own timing output (festival's segment file, espeak-ng's events
    as ``type ms name`` lines), kept so a parser can be checked against it.
    """

    waveform: np.ndarray
    sample_rate: int
    segments: tuple[PhoneSegment, ...]
    raw: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return float(self.waveform.shape[0] / self.sample_rate)


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of ``speak_lib.h``."""

    class _Id(ctypes.Union):
        _fields_ = [
            ("number", ctypes.c_int),
            ("name", ctypes.c_char_p),
            ("string", ctypes.c_char * 8),
        ]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_PHONEME_EVENTS_IPA = 0x0001 | 0x0002  # espeakINITIALIZE_PHONEME_EVENTS | _PHONEME_IPA
_CHARS_UTF8, _SSML = 0x1, 0x10
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}


class EspeakNG:
    """espeak-ng through its C library (one instance per process is enough).

    Raises
    ------
    SpeechEngineError
        When ``libespeak-ng`` cannot be loaded or initialised.
    """

    _lib: Any = None
    _rate = 0

    def __init__(self) -> None:
        if EspeakNG._lib is None:
            name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                raise _missing("espeak-ng", "libespeak-ng cannot be loaded") from None
            lib.espeak_Initialize.restype = ctypes.c_int
            rate = int(lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS_IPA))
            if rate <= 0:
                raise _missing("espeak-ng", "espeak_Initialize failed (no voice data?)")
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_Synth.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            EspeakNG._lib, EspeakNG._rate = lib, rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _CALLBACK(self._collect)

    @property
    def sample_rate(self) -> int:
        """The library's output rate in Hz (22050 for espeak-ng's voices)."""
        return int(EspeakNG._rate)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != 0:
            event = events[i]
            name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            label = name if event.type == 7 else str(event.id.number)
            self._events.append((int(event.type), int(event.audio_position), label))
            i += 1
        return 0

    def speak(
        self,
        text: str,
        voice: str,
        *,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        volume: int = 100,
        ssml: bool = False,
    ) -> Utterance:
        """Synthesise ``text`` with ``voice`` (``"en-us+f3"``: language, then ``+variant``).

        Parameters
        ----------
        rate
            Words per minute (80-450).
        pitch, pitch_range
            0-100 (50 is the voice's own).
        volume
            0-200 (100 is normal).
        ssml
            ``text`` is SSML.

        Raises
        ------
        SpeechEngineError
            When the voice is unknown or synthesis fails.
        """
        lib = EspeakNG._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechEngineError(
                f"espeak-ng has no voice {voice!r}; list them with: espeak-ng --voices"
            )
        for key, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range)):
            lib.espeak_SetParameter(_PARAMETERS[key], int(value), 0)
        lib.espeak_SetParameter(_PARAMETERS["volume"], int(volume), 0)
        self._chunks, self._events = [], []
        lib.espeak_SetSynthCallback(self._callback)
        data = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        if lib.espeak_Synth(data, len(data), 0, 0, 0, flags, None, None) != 0:
            raise SpeechEngineError(f"espeak-ng failed to synthesise {text[:40]!r} ({voice})")
        lib.espeak_Synchronize()
        wave = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        waveform = (wave.astype(np.float32) / 32768.0).astype(np.float32)
        duration = waveform.shape[0] / self.sample_rate
        raw = "\n".join(f"{t} {ms} {name}" for t, ms, name in self._events)
        segments = espeak_segments(self._events, duration)
        return Utterance(waveform, self.sample_rate, tuple(segments), raw)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Festival:
    """festival run as a program, one process per utterance.

    Parameters
    ----------
    program
        The ``festival`` executable (found on ``PATH`` by default).

    Raises
    ------
    SpeechEngineError
        When festival is not installed.
    """

    def __init__(self, program: str | None = None) -> None:
        found = program or shutil.which("festival")
        if found is None:
            raise _missing("festival", "the festival program is not on PATH")
        self.program = found

    def _run(self, setup: str, synth: str, phoneset: str, timeout: float) -> Utterance:
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="emo-festival-") as tmp:
            folder = Path(tmp)
            wav, segs = folder / "out.wav", folder / "out.segs"
            script = (
                f"{setup}\n(define (emo_save utt)\n"
                f"  (utt.save.wave utt {_scheme_string(os.fspath(wav))} 'riff)\n"
                f"  (utt.save.segs utt {_scheme_string(os.fspath(segs))})\n  utt)\n{synth}\n"
            )
            (folder / "run.scm").write_text(script, encoding="utf-8")
            done = subprocess.run(
                [self.program, "-b", os.fspath(folder / "run.scm")],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if not wav.is_file() or not segs.is_file():
                raise SpeechEngineError(
                    f"festival wrote no audio (exit {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-300:]}"
                )
            audio, rate = sf.read(os.fspath(wav), dtype="float32", always_2d=True)
            raw = segs.read_text(encoding="utf-8")
        segments = festival_segments(raw, phoneset)
        return Utterance(np.ascontiguousarray(audio[:, 0]), int(rate), tuple(segments), raw)

    @staticmethod
    def _setup(voice: str, stretch: float, f0_mean: float | None) -> str:
        lines = [f"(voice_{voice})", f"(Parameter.set 'Duration_Stretch {stretch:.3f})"]
        if f0_mean is not None:
            # Diphone voices' linear-regression intonation: move the target mean and spread.
            lines.append(
                f"(if (boundp 'int_lr_params) (set! int_lr_params (list (list 'target_f0_mean "
                f"{f0_mean:.1f}) (list 'target_f0_std {0.14 * f0_mean:.1f}) "
                "(list 'model_f0_mean 170) (list 'model_f0_std 34))))"
            )
        return "\n".join(lines)

    def speak(
        self,
        text: str,
        voice: str,
        *,
        phoneset: str = "radio",
        stretch: float = 1.0,
        f0_mean: float | None = None,
        timeout: float = 60.0,
    ) -> Utterance:
        """Synthesise ``text`` with festival voice ``voice`` (``"kal_diphone"``).

        Parameters
        ----------
        phoneset
            How the voice's phones map to IPA: ``"radio"`` (English) or ``"sampa"``.
        stretch
            Duration stretch (> 1 is slower).
        f0_mean
            Target mean pitch in Hz for voices with linear-regression intonation.
        timeout
            Seconds festival may take.
        """
        synth = (
            f"(set! utt (Utterance Text {_scheme_string(text)}))\n(utt.synth utt)\n(emo_save utt)"
        )
        return self._run(self._setup(voice, stretch, f0_mean), synth, phoneset, timeout)

    def sing(
        self, song_xml: str, voice: str, *, phoneset: str = "radio", timeout: float = 60.0
    ) -> Utterance:
        """Sing a festival singing-mode document (``<SINGING>`` with ``PITCH``/``DURATION``)."""
        with tempfile.NamedTemporaryFile(
            "w", suffix=".xml", prefix="emo-song-", delete=False, encoding="utf-8"
        ) as handle:
            handle.write(song_xml)
            song = handle.name
        try:
            setup = self._setup(voice, 1.0, None) + "\n(require 'singing-mode)"
            synth = (
                "(set! tts_hooks (list utt.synth emo_save))\n"
                f"(tts_file {_scheme_string(song)} 'singing)"
            )
            return self._run(setup, synth, phoneset, timeout)
        finally:
            os.unlink(song)
