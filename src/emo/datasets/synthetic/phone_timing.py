"""Phone timing as speech engines report it, parsed into :class:`PhoneSegment` s.

Two engine outputs are read, both pure text/number processing (no engine needed):

- festival's segment label file (``utt.save.segs``): a ``#`` line, then one line per
  segment ``<end seconds> <colour> <phone>``; a segment starts where the previous ends;
- espeak-ng's synthesis events (``espeak_SetSynthCallback`` with
  ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA``): phoneme events
  ``(7, audio position in ms, IPA)``, a pause reported as an empty name; a phoneme lasts
  until the next one starts, the last until the end of the audio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emo.datasets.synthetic.visemes import festival_to_ipa
from emo.errors import InputError

__all__ = [
    "ESPEAK_PHONEME_EVENT",
    "PhoneSegment",
    "espeak_segments",
    "festival_segments",
    "parse_espeak_events",
]

#: ``espeakEVENT_PHONEME`` of espeak-ng's ``espeak_EVENT_TYPE``.
ESPEAK_PHONEME_EVENT = 7


@dataclasses.dataclass(frozen=True)
class PhoneSegment:
    """One phone from ``start`` to ``end`` seconds: its IPA (``""`` = pause) and engine name."""

    ipa: str
    start: float
    end: float
    phone: str


def festival_segments(text: str, phoneset: str) -> list[PhoneSegment]:
    """Segments of a festival ``utt.save.segs`` file.

    Parameters
    ----------
    text
        The file's content.
    phoneset
        ``"radio"`` or ``"sampa"`` (:func:`~emo.datasets.synthetic.visemes.festival_to_ipa`).

    Returns
    -------
    list of PhoneSegment
        In time order, zero-length segments dropped.

    Raises
    ------
    InputError
        When a line is not ``<end> <colour> <phone>`` or the times go backwards.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "#":
        raise InputError("a festival segment file starts with a '#' line")
    out: list[PhoneSegment] = []
    start = 0.0
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        try:
            end = float(parts[0])
            phone = parts[2]
        except (IndexError, ValueError):
            raise InputError(
                f"festival segment line {number} is not '<end> <colour> <phone>': {line!r}"
            ) from None
        if end < start - 1e-6:
            raise InputError(f"festival segment line {number} ends before it starts: {line!r}")
        if end > start:
            out.append(PhoneSegment(festival_to_ipa(phone, phoneset), start, end, phone))
        start = max(start, end)
    return out


def espeak_segments(events: Sequence[tuple[int, int, str]], duration: float) -> list[PhoneSegment]:
    """Segments from espeak-ng's synthesis events.

    Parameters
    ----------
    events
        ``(type, audio_position_ms, name)`` in the order the callback reported them; only
        phoneme events (:data:`ESPEAK_PHONEME_EVENT`) are read, ``name`` is their IPA.
    duration
        Seconds of audio synthesised (the last phone ends there).

    Returns
    -------
    list of PhoneSegment
        In time order; a leading stretch before the first phone is a pause; phones of
        zero length dropped.
    """
    phones = [(ms / 1000.0, name) for kind, ms, name in events if kind == ESPEAK_PHONEME_EVENT]
    phones.sort(key=lambda p: p[0])
    out: list[PhoneSegment] = []
    if phones and phones[0][0] > 0:
        out.append(PhoneSegment("", 0.0, min(phones[0][0], duration), ""))
    for k, (start, name) in enumerate(phones):
        end = phones[k + 1][0] if k + 1 < len(phones) else duration
        end = min(end, duration)
        if end > start:
            out.append(PhoneSegment(name, start, end, name))
    if not phones and duration > 0:
        out.append(PhoneSegment("", 0.0, duration, ""))
    return out


def parse_espeak_events(raw: str) -> list[tuple[int, int, str]]:
    """espeak-ng events from their text form: one ``<type> <ms> <name>`` line each.

    The form :attr:`Utterance.raw <emo.datasets.synthetic.engines.Utterance>` keeps; a pause
    phoneme has an empty name.

    Raises
    ------
    InputError
        When a line does not start with two integers.
    """
    events = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        try:
            kind, ms = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise InputError(
                f"espeak-ng event line {number} is not '<type> <ms> <name>': {line!r}"
            ) from None
        events.append((kind, ms, parts[2] if len(parts) > 2 else ""))
    return events
