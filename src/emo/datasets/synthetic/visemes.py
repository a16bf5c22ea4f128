"""Phonemes to visemes: the mouth shape each speech sound is made with.

Speech engines report the phones they spoke (espeak-ng as IPA, festival in its voice's
phone set); :func:`visemes_of` maps one phone to one or two :class:`Viseme` s (a
diphthong moves from its first to its second vowel) through :data:`IPA_CLASSES` and
:data:`VISEME_CLASSES`. The values follow the built-in formant synthesiser's visemes
(:data:`emo.datasets.synthetic.speech.PHONEMES`: ``a`` opening 1 width 0.6, ``i`` 0.3 /
1.0, ``u`` 0.4 / 0.15, ``m`` and ``p`` closed), so both data sources draw the same mouths.

==================  ==========================================  =======  =====  ========
class               IPA                                         opening  width  rounding
==================  ==========================================  =======  =====  ========
silence             (pause)                                     0.0      0.5    0.0
bilabial            p b m ɓ ʙ ɸ β                               0.0      0.5    0.1
labiodental         f v ɱ ʋ                                     0.08     0.6    0.0
alveolar            t d n s z l ɾ r ɬ ɮ θ ð ʦ ʣ ɗ ɭ ʈ ɖ ɳ        0.15     0.75   0.0
postalveolar        ʃ ʒ tʃ dʒ ɕ ʑ ʂ ʐ tɕ dʑ                      0.15     0.35   0.6
rhotic              ɹ ɻ ʁ ʀ                                     0.2      0.45   0.4
palatal             j ç ɲ ʎ c ɟ ʝ                               0.15     0.9    0.0
velar               k g ɡ ŋ x ɣ h ɦ ʔ q χ ʕ ħ ɰ ɢ               0.3      0.6    0.0
labial-velar        w ʍ ɥ                                       0.1      0.15   0.9
open                a ɑ æ ɐ ä ɶ                                 1.0      0.6    0.0
open-rounded        ɒ                                           0.9      0.4    0.5
open-mid            ɛ ʌ ɜ                                       0.7      0.75   0.0
close-mid           e ɘ ɤ                                       0.55     0.85   0.0
close               i ɪ ɨ ɯ                                     0.3      1.0    0.0
central             ə ɚ ɝ ᵻ                                     0.45     0.6    0.0
front-rounded       y ʏ ø œ ɵ ɞ ʉ                               0.4      0.3    0.8
mid-back-rounded    o ɔ                                         0.75     0.3    0.7
close-back-rounded  u ʊ                                         0.4      0.15   1.0
==================  ==========================================  =======  =====  ========

``opening`` and ``width`` are what the renderer draws (:meth:`HeadRenderer.render
<emo.datasets.synthetic.render.HeadRenderer.render>`); ``rounding`` (lip protrusion) is
recorded with the units for renderers that can draw it; the drawn width already narrows
for rounded sounds.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

__all__ = [
    "FESTIVAL_RADIO",
    "FESTIVAL_SAMPA",
    "IPA_CLASSES",
    "SILENCE",
    "VISEME_CLASSES",
    "Viseme",
    "festival_to_ipa",
    "viseme_class",
    "visemes_of",
]


@dataclasses.dataclass(frozen=True)
class Viseme:
    """A mouth shape: ``opening``, ``width`` and lip ``rounding``, each in ``[0, 1]``."""

    name: str
    opening: float
    width: float
    rounding: float


VISEME_CLASSES: dict[str, Viseme] = {
    v.name: v
    for v in (
        Viseme("silence", 0.0, 0.5, 0.0),
        Viseme("bilabial", 0.0, 0.5, 0.1),
        Viseme("labiodental", 0.08, 0.6, 0.0),
        Viseme("alveolar", 0.15, 0.75, 0.0),
        Viseme("postalveolar", 0.15, 0.35, 0.6),
        Viseme("rhotic", 0.2, 0.45, 0.4),
        Viseme("palatal", 0.15, 0.9, 0.0),
        Viseme("velar", 0.3, 0.6, 0.0),
        Viseme("labial-velar", 0.1, 0.15, 0.9),
        Viseme("open", 1.0, 0.6, 0.0),
        Viseme("open-rounded", 0.9, 0.4, 0.5),
        Viseme("open-mid", 0.7, 0.75, 0.0),
        Viseme("close-mid", 0.55, 0.85, 0.0),
        Viseme("close", 0.3, 1.0, 0.0),
        Viseme("central", 0.45, 0.6, 0.0),
        Viseme("front-rounded", 0.4, 0.3, 0.8),
        Viseme("mid-back-rounded", 0.75, 0.3, 0.7),
        Viseme("close-back-rounded", 0.4, 0.15, 1.0),
    )
}
SILENCE = VISEME_CLASSES["silence"]

_GROUPS = {
    "bilabial": "p b m ɓ ʙ ɸ β",
    "labiodental": "f v ɱ ʋ",
    "alveolar": "t d n s z l ɾ r ɬ ɮ θ ð ʦ ʣ ɗ ɭ ʈ ɖ ɳ ɫ ɺ",
    "postalveolar": "ʃ ʒ tʃ dʒ ɕ ʑ ʂ ʐ tɕ dʑ ʧ ʤ",
    "rhotic": "ɹ ɻ ʁ ʀ",
    "palatal": "j ç ɲ ʎ c ɟ ʝ",
    "velar": "k g ɡ ŋ x ɣ h ɦ ʔ q χ ʕ ħ ɰ ɢ",
    "labial-velar": "w ʍ ɥ",
    "open": "a ɑ æ ɐ ä ɶ",
    "open-rounded": "ɒ",
    "open-mid": "ɛ ʌ ɜ",
    "close-mid": "e ɘ ɤ",
    "close": "i ɪ ɨ ɯ",
    "central": "ə ɚ ɝ ᵻ",
    "front-rounded": "y ʏ ø œ ɵ ɞ ʉ",
    "mid-back-rounded": "o ɔ",
    "close-back-rounded": "u ʊ",
}
#: IPA symbol (one character, or an affricate's two) -> viseme class name.
IPA_CLASSES: dict[str, str] = {
    symbol: name for name, symbols in _GROUPS.items() for symbol in symbols.split()
}
_VOWEL_CLASSES = frozenset(
    (
        "open",
        "open-rounded",
        "open-mid",
        "close-mid",
        "close",
        "central",
        "front-rounded",
        "mid-back-rounded",
        "close-back-rounded",
    )
)
# Stress, length, syllable and tone marks: they change no mouth shape.
_MARKS = frozenset("ˈˌːˑ.|‖‿ʰʲʷˠˤ̃ʼ-'\"_")

#: festival's English ``radio`` phone set (kal, ked, cmu_us_slt_arctic_hts) -> IPA.
FESTIVAL_RADIO: dict[str, str] = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ",
    "ay": "aɪ", "b": "b", "ch": "tʃ", "d": "d", "dh": "ð", "dx": "ɾ", "eh": "ɛ",
    "el": "l", "em": "m", "en": "n", "er": "ɝ", "ey": "eɪ", "f": "f", "g": "g",
    "hh": "h", "hv": "h", "ih": "ɪ", "iy": "i", "jh": "dʒ", "k": "k", "l": "l",
    "m": "m", "n": "n", "ng": "ŋ", "nx": "ɾ", "ow": "oʊ", "oy": "ɔɪ", "p": "p",
    "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ", "uh": "ʊ", "uw": "u",
    "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
}  # fmt: skip
#: festival's SAMPA-like phone sets of the other languages (Italian, Czech, Finnish,
#: Catalan, Russian voices), after stress digits are removed -> IPA.
FESTIVAL_SAMPA: dict[str, str] = {
    "a": "a", "aa": "a", "a:": "a", "ae": "æ", "ax": "ə", "ay": "ɐ", "e": "e", "e:": "e",
    "ee": "e", "E": "ɛ", "i": "i", "i:": "i", "ii": "i", "I": "ɪ", "o": "o", "o:": "o",
    "oo": "o", "O": "ɔ", "oe": "ø", "u": "u", "u:": "u", "uu": "u", "U": "ʊ", "y": "y",
    "yy": "y", "@": "ə", "b": "b", "c": "ts", "ch": "tʃ", "d": "d", "dz": "dʒ",
    "d~": "ɟ", "dZ": "dʒ", "f": "f", "g": "g", "h": "h", "j": "j", "J": "ɲ", "k": "k",
    "l": "l", "L": "ʎ", "m": "m", "n": "n", "N": "ŋ", "n~": "ɲ", "ng": "ŋ", "nf": "ɱ",
    "p": "p", "r": "r", "rr": "r", "r~": "r", "R": "r", "s": "s", "S": "ʃ", "sh": "ʃ",
    "t": "t", "t~": "c", "tS": "tʃ", "ts": "ts", "v": "v", "w": "w", "x": "x", "z": "z",
    "Z": "ʒ", "zh": "ʒ", "B": "β", "D": "ð", "G": "ɣ", "T": "θ", "jj": "j",
}  # fmt: skip
_FESTIVAL_SILENCES = frozenset(("pau", "#", "_", "h#", "sil", "SIL", "brth", "-"))


def festival_to_ipa(phone: str, phoneset: str) -> str:
    """A festival phone as IPA (``""`` for a pause).

    Parameters
    ----------
    phone
        The phone's name as festival reports it (``"aa"``, ``"O1"``, ``"#"``).
    phoneset
        ``"radio"`` (English voices) or ``"sampa"`` (every other festival voice here).

    Returns
    -------
    str
        The IPA; an unknown phone is returned unchanged (then :func:`visemes_of`
        classifies it by its letters).
    """
    if phone in _FESTIVAL_SILENCES:
        return ""
    table = FESTIVAL_RADIO if phoneset == "radio" else FESTIVAL_SAMPA
    if phone in table:
        return table[phone]
    bare = phone.rstrip("0123456789")
    return table.get(bare, table.get(bare.lower(), bare))


def _symbols(ipa: str) -> list[str]:
    """The phone's symbols that carry a mouth shape (marks and diacritics dropped)."""
    # espeak-ng marks a switch of language inside the phone name: "(en)".
    decomposed = unicodedata.normalize("NFD", re.sub(r"\([a-z-]*\)?|\)", "", ipa))
    chars = [
        c for c in decomposed if unicodedata.category(c) != "Mn" and c not in _MARKS and c != "͡"
    ]
    out: list[str] = []
    i = 0
    while i < len(chars):
        pair = "".join(chars[i : i + 2])
        if len(pair) == 2 and pair in IPA_CLASSES:
            out.append(pair)
            i += 2
            continue
        out.append(chars[i])
        i += 1
    return out


def viseme_class(symbol: str) -> Viseme | None:
    """The viseme of one IPA symbol, or ``None`` when the symbol is unknown."""
    name = IPA_CLASSES.get(symbol)
    return None if name is None else VISEME_CLASSES[name]


def visemes_of(ipa: str) -> list[tuple[float, Viseme]]:
    """The mouth shapes of one phone, as ``(fraction of the phone's duration, viseme)``.

    A pause (``""``) is silence; an affricate (``tʃ``) is one shape; a phone with two
    vowels (a diphthong ``aɪ``) is its first vowel for 60 % of its time, then its second;
    a consonant cluster reported as one phone (``ts``) takes its first symbol's shape.
    Symbols no class knows are skipped; a phone with none left is a neutral half-open
    mouth (the ``central`` class).

    Returns
    -------
    list of tuple
        One or two ``(fraction, Viseme)``; fractions sum to 1.
    """
    symbols = _symbols(ipa)
    if not symbols:
        return [(1.0, SILENCE)]
    known = [v for v in (viseme_class(s) for s in symbols) if v is not None]
    if not known:
        return [(1.0, VISEME_CLASSES["central"])]
    vowels = [v for v in known if v.name in _VOWEL_CLASSES]
    if len(vowels) >= 2:
        return [(0.6, vowels[0]), (0.4, vowels[1])]
    if vowels:
        return [(1.0, vowels[0])]
    return [(1.0, known[0])]
