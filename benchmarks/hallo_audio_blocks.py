"""How far Hallo-mode audio features computed in blocks are from Hallo's whole-track encoding.

Hallo runs wav2vec2's transformer once over the whole track, so its memory grows with
the length (attention over every pair of frames). ``Wav2Vec2Encoder(mode="hallo")``
runs it on blocks of ``chunk_seconds`` that see ``context_seconds`` more frames on each
side; everything before the transformer (normalisation, convolutions, interpolation)
uses whole-track statistics and equals the one-shot values up to float rounding.

Prints, per block and context length, the largest and the mean absolute difference to
the whole-track features (each layer in units of that layer's standard deviation over
the track, as ``benchmarks/audio_blocks.py`` does for emo's own mode), and with
``--memory`` the peak resident memory of a fresh process that encodes the track whole
or in blocks.

Usage::

    python benchmarks/hallo_audio_blocks.py [--model path/to/wav2vec2] [--seconds 120]
        [--blocks 20,60] [--contexts 2,5,10] [--memory 60,600] [--memory-block 60,10]

Without ``--model`` a randomly initialised wav2vec2-base stands in (no weights are
downloaded here): random attention spreads over the whole input, whereas a trained
model attends mostly nearby, so its figures are a pessimistic guess; measure your own
folder (Hallo's ``pretrained_models/wav2vec/wav2vec2-base-960h``).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FPS, CLIP = 25.0, 16


def speech(seconds: float) -> torch.Tensor:
    """The example speech files, repeated to ``seconds`` of 16 kHz audio."""
    parts = [
        sf.read(str(EXAMPLES / n), dtype="float32")[0] for n in ("speech.wav", "demo_speech.wav")
    ]
    wave = torch.cat([torch.from_numpy(p) for p in parts])
    return wave.repeat(math.ceil(seconds * 16000 / wave.shape[0]))[: int(seconds * 16000)]


def encode(
    model: str, seconds: float, block: float | None, context: float, lazy: bool = False
) -> torch.Tensor:
    """Hallo-mode features of ``seconds`` of speech, padded to whole 16-frame clips.

    ``lazy``: walk the clips as the pipeline does (``feature_blocks``, one clip at a time,
    nothing kept) and return the last clip's features.
    """
    from emo.audio.hallo_features import hallo_frame_count
    from emo.audio.wav2vec2 import Wav2Vec2Encoder

    encoder = Wav2Vec2Encoder(model, mode="hallo", chunk_seconds=block, context_seconds=context)
    wave = speech(seconds)
    frames = math.ceil(hallo_frame_count(wave.shape[0], 16000, FPS) / CLIP) * CLIP
    if not lazy:
        return encoder.encode(wave, 16000, num_frames=frames, fps=FPS)
    source = encoder.feature_blocks(wave, 16000, num_frames=frames, fps=FPS)
    clip = torch.empty(0)
    for start in range(0, frames, CLIP):
        clip = source(start, start + CLIP)
    return clip


def peak_mb(
    model: str, seconds: float, block: float | None, context: float, lazy: bool = False
) -> tuple[float, float]:
    """Peak resident memory (MB) and seconds of a fresh process that encodes once."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys, time, resource, torch; torch.set_num_threads(1); "
        f"sys.path.insert(0, {here!r}); import hallo_audio_blocks as b; t = time.perf_counter(); "
        f"b.encode({model!r}, {seconds!r}, {block!r}, {context!r}, {lazy!r}); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, took = out.stdout.strip().splitlines()[-1].split()
    return float(peak), float(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="a transformers wav2vec2 folder")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--blocks", default="20,60", help="block seconds to try")
    parser.add_argument("--contexts", default="2,5,10", help="context seconds to try")
    parser.add_argument("--memory", default="", help="track seconds to measure memory at")
    parser.add_argument("--memory-block", default="60,10", help="block,context for --memory")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            import transformers
            from transformers import Wav2Vec2Config, Wav2Vec2Model

            transformers.logging.set_verbosity_error()
            model = str(Path(tmp) / "wav2vec2-base-random")
            Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(model)
            print("model: a randomly initialised wav2vec2-base (pessimistic; see the docstring)")
        began = time.perf_counter()
        whole = encode(model, args.seconds, None, 0.0)
        took = time.perf_counter() - began
        scale = whole.std(dim=(0, 2), keepdim=True).clamp_min(1e-12)
        print(
            f"{args.seconds:g} s of speech, {whole.shape[0]} frames, {whole.shape[1]} layers; "
            f"whole track in {took:.1f} s"
        )
        print("block s | context s | max |diff|/std | mean |diff|/std | max |diff| | time s")
        for block in (float(b) for b in args.blocks.split(",")):
            for context in (float(c) for c in args.contexts.split(",")):
                began = time.perf_counter()
                blocks = encode(model, args.seconds, block, context)
                took = time.perf_counter() - began
                diff = (blocks - whole).abs()
                rel = diff / scale
                print(
                    f"{block:7g} | {context:9g} | {float(rel.max()):14.4f} | "
                    f"{float(rel.mean()):15.5f} | {float(diff.max()):10.4f} | {took:6.1f}"
                )
        if args.memory:
            block, context = (float(v) for v in args.memory_block.split(","))
            print(f"peak resident memory (MB), blocks of {block:g} s + {context:g} s context:")
            print("(whole: Hallo's one transformer pass; encode: blocks, all frames returned;")
            print(" clip by clip: feature_blocks walked a clip at a time, as the pipeline does)")
            print("track s | whole track MB (s) | encode in blocks MB (s) | clip by clip MB (s)")
            for seconds in (float(s) for s in args.memory.split(",")):
                runs = [
                    peak_mb(model, seconds, None, 0.0),
                    peak_mb(model, seconds, block, context),
                    peak_mb(model, seconds, block, context, lazy=True),
                ]
                cells = [f"{mb:.0f} ({took:.0f})" for mb, took in runs]
                print(f"{seconds:7g} | {cells[0]:>18} | {cells[1]:>23} | {cells[2]:>19}")


if __name__ == "__main__":
    main()
