"""The voices of real speech engines, and the split into training and held-out voices.

A :class:`Voice` is one speaker of one engine: an espeak-ng language with a voice
variant (``en-us+f3``), or a festival voice (``kal_diphone``). Engines count by how they
make sound: ``espeak-ng`` (formant synthesis), ``festival-diphone`` (concatenated
diphones, and the one unit-selection voice), ``festival-hts`` (statistical parametric,
HMM-based). The catalogue (:func:`voice_catalogue`) is fixed in code, so the split is the
same on every machine, with or without the engines installed:

- every voice of a held-out engine (:data:`HELDOUT_ENGINES`: ``festival-hts``) is held out;
- an espeak-ng voice is held out when its variant is (:func:`heldout_variant`: a SHA-256
  of the variant's name, one in four), whatever its language;
- the festival voices in :data:`HELDOUT_FESTIVAL` are held out.

So no held-out speaker is ever heard in training, in any language.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

__all__ = [
    "ESPEAK_LANGUAGES",
    "ESPEAK_VARIANTS",
    "FESTIVAL_VOICES",
    "HELDOUT_ENGINES",
    "HELDOUT_FESTIVAL",
    "SPLIT_VERSION",
    "Voice",
    "heldout_variant",
    "voice_catalogue",
    "voice_split",
]

VoiceSplit = Literal["train", "heldout"]

#: Names the rule below; recorded with every clip so a later change is visible.
SPLIT_VERSION = "emo-voices/1"

#: espeak-ng languages used (voice names of espeak-ng 1.51) and the script of their text.
ESPEAK_LANGUAGES: dict[str, str] = {
    "en-us": "english", "en-gb-x-rp": "english", "de": "latin", "fr": "latin",
    "es": "latin", "it": "latin", "pt": "latin", "nl": "latin", "pl": "latin",
    "sv": "latin", "fi": "latin", "cs": "latin", "tr": "latin", "id": "latin",
    "sw": "latin", "hu": "latin", "ro": "latin", "ca": "latin", "da": "latin",
    "nb": "latin", "ru": "cyrillic", "el": "greek",
}  # fmt: skip
#: espeak-ng voice variants that sound like people (novelty and robot variants left out).
ESPEAK_VARIANTS: tuple[str, ...] = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen",
    "Storm", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
    "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "grandma",
    "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt",
    "klatt2", "klatt3", "klatt4", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy",
    "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor",
    "zac",
)  # fmt: skip
#: festival voices: name -> (engine, language, phone set, sings).
FESTIVAL_VOICES: dict[str, tuple[str, str, str, bool]] = {
    "kal_diphone": ("festival-diphone", "en", "radio", True),
    "ked_diphone": ("festival-diphone", "en", "radio", True),
    "lp_diphone": ("festival-diphone", "it", "sampa", False),
    "pc_diphone": ("festival-diphone", "it", "sampa", False),
    "suo_fi_lj_diphone": ("festival-diphone", "fi", "sampa", False),
    "hy_fi_mv_diphone": ("festival-diphone", "fi", "sampa", False),
    "czech_dita": ("festival-diphone", "cs", "sampa", False),
    "czech_machac": ("festival-diphone", "cs", "sampa", False),
    "msu_ru_nsh_clunits": ("festival-diphone", "ru", "sampa", False),
    "cmu_us_slt_arctic_hts": ("festival-hts", "en", "radio", False),
    "upc_ca_ona_hts": ("festival-hts", "ca", "sampa", False),
}
HELDOUT_ENGINES = frozenset(("festival-hts",))
HELDOUT_FESTIVAL = frozenset(("ked_diphone", "czech_machac"))


@dataclasses.dataclass(frozen=True)
class Voice:
    """One speaker of one engine.

    Attributes
    ----------
    engine
        ``"espeak-ng"``, ``"festival-diphone"`` or ``"festival-hts"``.
    name
        The engine's voice name: ``"en-us+f3"`` (espeak-ng) or ``"kal_diphone"``.
    language
        The language code.
    script
        What text to give it: ``"english"``, ``"latin"``, ``"cyrillic"`` or ``"greek"``.
    phoneset
        How its phones are named: ``"ipa"`` (espeak-ng), ``"radio"`` or ``"sampa"``.
    sings
        Whether it can sing (festival's singing mode, or espeak-ng's notes).
    split
        ``"train"`` or ``"heldout"``.
    heldout_by
        ``"engine"``, ``"voice"`` or ``""`` (a training voice).
    """

    engine: str
    name: str
    language: str
    script: str
    phoneset: str
    sings: bool
    split: VoiceSplit
    heldout_by: str

    @property
    def key(self) -> str:
        """``"<engine>:<name>"``, unique in the catalogue."""
        return f"{self.engine}:{self.name}"

    @property
    def speaker(self) -> str:
        """What identifies the speaker across languages (an espeak-ng variant, a festival voice)."""
        return self.name.split("+", 1)[1] if "+" in self.name else self.name


def heldout_variant(variant: str) -> bool:
    """Whether an espeak-ng variant is held out: a stable hash of its name, one in four."""
    digest = hashlib.sha256(f"{SPLIT_VERSION}:{variant}".encode()).digest()
    return digest[0] % 4 == 0


def voice_catalogue() -> list[Voice]:
    """Every voice, with its split, in a fixed order (espeak-ng, then festival)."""
    voices = []
    for language, script in ESPEAK_LANGUAGES.items():
        for variant in ESPEAK_VARIANTS:
            held = heldout_variant(variant)
            voices.append(
                Voice(
                    "espeak-ng",
                    f"{language}+{variant}",
                    language.split("-")[0],
                    script,
                    "ipa",
                    True,
                    "heldout" if held else "train",
                    "voice" if held else "",
                )
            )
    for name, (engine, language, phoneset, sings) in FESTIVAL_VOICES.items():
        by = "engine" if engine in HELDOUT_ENGINES else "voice" if name in HELDOUT_FESTIVAL else ""
        voices.append(
            Voice(
                engine,
                name,
                language,
                "english" if language == "en" else "latin",
                phoneset,
                sings,
                "heldout" if by else "train",
                by,
            )
        )
    return voices


def voice_split(split: VoiceSplit) -> list[Voice]:
    """The voices of one split, in catalogue order."""
    return [v for v in voice_catalogue() if v.split == split]
