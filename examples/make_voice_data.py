"""Write synthetic talking heads that speak and sing with real speech engines' voices.

Each clip is a synthetic head (:mod:`emo.datasets.synthetic`) mouthing a track made by
espeak-ng or festival (:func:`emo.datasets.synthetic.voice_track`): the mouth truth comes
from the engine's own phone timing mapped to visemes. Clips are rendered at
``--render-size``, cropped around the face region (grown ``--crop`` times) to
``--resolution`` and written as MP4 + truth ``.json``: the layout ``emo prepare`` reads,
the same as ``examples/train_demo.py``'s data phase.

The voice split (:func:`emo.datasets.synthetic.voice_split`) decides which voices a split
may use: ``--split train`` only training voices (and training identities), ``--split
heldout`` only held-out voices and engines (and held-out identities). ``OUT/voices.json``
records the split (its version and every voice of both sides) and, per clip, the voice.

The engines are needed here only (Debian/Ubuntu)::

    apt-get install -y espeak-ng festival festlex-cmu festlex-poslex festvox-kallpc16k \\
        festvox-kdlpc16k festvox-us-slt-hts festvox-ca-ona-hts festvox-italp16k \\
        festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita \\
        festvox-czech-machac festvox-ru

Usage::

    python examples/make_voice_data.py --out runs/voices/videos --clips 320
    python examples/make_voice_data.py --out runs/voices/heldout --split heldout --clips 24
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def pick_voice(rng: np.random.Generator, voices: list[Any]) -> Any:
    """An engine first (each equally likely), then one of its voices: espeak-ng's 1,700
    language x variant voices would otherwise drown festival's few."""
    engines = sorted({v.engine for v in voices})
    engine = engines[int(rng.integers(len(engines)))]
    mine = [v for v in voices if v.engine == engine]
    return mine[int(rng.integers(len(mine)))]


def write_voice_clips(
    folder: Path,
    count: int,
    *,
    split: str = "train",
    seconds: float = 3.0,
    render_size: int = 96,
    resolution: int = 64,
    crop: float = 1.3,
    speeds: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0),
    singing: float = 0.2,
    seed: int = 0,
    log: bool = True,
) -> list[Path]:
    """Write ``count`` clips ``<split>_voice_<i>.mp4`` (+ ``.json``) and ``voices.json``.

    Existing clips are kept (a rerun continues); the same arguments give the same clips.
    """
    from emo.datasets.synthetic import (
        crop_to_face,
        make_clip,
        voice_catalogue,
        voice_split,
        voice_track,
        write_clip,
    )
    from emo.datasets.synthetic.voices import SPLIT_VERSION
    from emo.errors import SpeechEngineError

    folder.mkdir(parents=True, exist_ok=True)
    voices = voice_split(split)  # type: ignore[arg-type]
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 29])
    paths, used = [], []
    for i in range(count):
        voice = pick_voice(rng, voices)
        mode = "singing" if voice.sings and rng.uniform() < singing else "speech"
        audio_seed = int(rng.integers(2**31))
        path = folder / f"{split}_voice_{i:05d}.mp4"
        if path.is_file():
            # A clip made by a retry records its own voice in its truth file.
            said = json.loads(path.with_suffix(".json").read_text())["audio"]
            used.append(
                {
                    "clip": path.name,
                    "voice": f"{said['engine']}:{said['voice']}",
                    "mode": said["mode"],
                    "seed": said["seed"],
                }
            )
        else:
            began = time.perf_counter()
            track = None
            for attempt in range(1, 6):
                try:
                    track = voice_track(voice, audio_seed, seconds, mode=mode)  # type: ignore[arg-type]
                    break
                except SpeechEngineError as error:
                    # festival's singing mode crashes on some texts; another draw, from a
                    # stream of its own, keeps every other clip as it was.
                    print(f"{path.name}: {voice.key} {mode} failed ({error}); drawing again")
                    retry = np.random.default_rng(
                        [seed, 0 if split == "train" else 1, 29, i, attempt]
                    )
                    voice = pick_voice(retry, voices)
                    mode = "singing" if voice.sings and retry.uniform() < singing else "speech"
                    audio_seed = int(retry.integers(2**31))
            if track is None:
                raise SpeechEngineError(f"{path.name}: five voices failed in a row; see above")
            used.append({"clip": path.name, "voice": voice.key, "mode": mode, "seed": audio_seed})
            clip = make_clip(
                seed * 1_000_003 + i,
                track,
                size=render_size,
                speed=speeds[i % len(speeds)],
                split=split,  # type: ignore[arg-type]
            )
            write_clip(crop_to_face(clip, resolution, crop), path)
            if log:
                print(
                    f"{path.name}: {voice.key} {mode} ({time.perf_counter() - began:.2f} s)",
                    flush=True,
                )
        paths.append(path)
    catalogue = voice_catalogue()
    manifest = {
        "split_version": SPLIT_VERSION,
        "split": split,
        "train_voices": [v.key for v in catalogue if v.split == "train"],
        "heldout_voices": {v.key: v.heldout_by for v in catalogue if v.split == "heldout"},
        "clips": used,
    }
    partial = folder / "voices.json.partial"
    partial.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(partial, folder / "voices.json")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of MP4 + JSON clips")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--split", choices=("train", "heldout"), default="train")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--render-size", type=int, default=96)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--crop", type=float, default=1.3)
    parser.add_argument("--singing", type=float, default=0.2, help="fraction sung")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    paths = write_voice_clips(
        Path(args.out),
        args.clips,
        split=args.split,
        seconds=args.seconds,
        render_size=args.render_size,
        resolution=args.resolution,
        crop=args.crop,
        singing=args.singing,
        seed=args.seed,
    )
    print(f"{len(paths)} clips in {time.perf_counter() - began:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
