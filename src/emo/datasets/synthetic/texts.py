"""Text for speech engines to say or sing, drawn from a seed.

English voices read Harvard sentences (IEEE 1969 phonetically balanced sentences, in
the public domain); every other voice reads made-up words of its script's letters
(consonant-vowel syllables), with commas and full stops, so pauses of several lengths
come out of the engine's own phrasing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HARVARD", "LYRICS", "sentence", "song_syllables"]

HARVARD: tuple[str, ...] = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
)
#: Sung syllables of English voices (open vowels, lips that close between some).
LYRICS: tuple[str, ...] = (
    "la", "love", "moon", "day", "oh", "sing", "my", "heart", "you", "me", "home", "sea",
    "blue", "night", "light", "so", "go", "far", "away", "mama", "baby", "shine",
)  # fmt: skip
_LETTERS = {
    "latin": ("bdfgklmnprstvz", "aeiou"),
    "english": ("bdfgklmnprstvz", "aeiou"),
    "cyrillic": ("бвгдзклмнпрстф", "аеиоуя"),
    "greek": ("βγδζκλμνπρστφ", "αεηιοω"),
}


def _word(rng: np.random.Generator, script: str) -> str:
    consonants, vowels = _LETTERS[script]
    syllables = int(rng.integers(1, 4))
    out = []
    for _ in range(syllables):
        if rng.uniform() < 0.8:
            out.append(consonants[int(rng.integers(len(consonants)))])
        out.append(vowels[int(rng.integers(len(vowels)))])
        if rng.uniform() < 0.25:
            out.append(consonants[int(rng.integers(len(consonants)))])
    return "".join(out)


def sentence(rng: np.random.Generator, script: str) -> str:
    """One sentence for a voice that reads ``script`` (a Harvard sentence for English)."""
    if script == "english":
        return HARVARD[int(rng.integers(len(HARVARD)))]
    words = [_word(rng, script) for _ in range(int(rng.integers(3, 9)))]
    text = " ".join(words)
    if len(words) > 4 and rng.uniform() < 0.5:
        cut = text.find(" ", len(text) // 2)
        text = text[:cut] + "," + text[cut:]
    return text[:1].upper() + text[1:] + "."


def song_syllables(rng: np.random.Generator, script: str, count: int) -> list[str]:
    """``count`` syllables to sing, one per note."""
    if script == "english":
        return [LYRICS[int(rng.integers(len(LYRICS)))] for _ in range(count)]
    consonants, vowels = _LETTERS[script]
    return [
        (consonants[int(rng.integers(len(consonants)))] if rng.uniform() < 0.6 else "")
        + vowels[int(rng.integers(len(vowels)))]
        for _ in range(count)
    ]
