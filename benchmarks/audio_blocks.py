"""How far block-wise audio features (what the pipeline uses) are from a whole-file encoding.

The pipeline encodes audio in blocks (10 s plus ``audio_context_seconds`` of real audio
on each side) so that memory does not grow with the audio length. ``mel`` is exact
(away from the file's own edges); wav2vec2 is not: its transformer attends to the whole
input and group-norm models normalise over it. This script measures the difference,
per context length, for a wav2vec2 folder of yours (``--model``) or, by default, a
randomly initialised model of the wav2vec2-base shape (no pretrained weights are
downloaded; a trained model's figure can differ, so measure yours).

Usage::

    python benchmarks/audio_blocks.py [--model path/to/wav2vec2] [--seconds 40]

Prints, per context length, the largest and the mean absolute difference, each feature
layer measured in units of that layer's standard deviation over the whole file.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import soundfile as sf
import torch

from emo.audio.wav2vec2 import Wav2Vec2Encoder
from emo.pipelines.conditioning import ClipAudioFeatures

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FPS, CLIP, CONTEXT_FRAMES, BLOCK_SECONDS = 25.0, 12, 2, 10.0


def speech(seconds: float) -> torch.Tensor:
    """The example speech files, repeated to ``seconds`` of 16 kHz audio."""
    parts = [
        sf.read(str(EXAMPLES / n), dtype="float32")[0] for n in ("speech.wav", "demo_speech.wav")
    ]
    wave = torch.cat([torch.from_numpy(p) for p in parts])
    repeats = math.ceil(seconds * 16000 / wave.shape[0])
    return wave.repeat(repeats)[: int(seconds * 16000)]


def block_wise(encoder: object, wave: torch.Tensor, frames: int, context: float) -> torch.Tensor:
    """Features of every frame as the pipeline gets them, clip by clip."""
    audio = ClipAudioFeatures(
        encoder,
        wave,
        fps=FPS,
        num_frames=frames,
        context_seconds=context,
        block_frames=max(CLIP + 2 * CONTEXT_FRAMES, math.ceil(BLOCK_SECONDS * FPS)),
    )
    clips = [audio.window(s, min(frames, s + CLIP), 0) for s in range(0, frames, CLIP)]
    return torch.cat(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="wav2vec2 folder (default: random base)")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--contexts", default="0.5,1,2,4")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            from transformers import Wav2Vec2Config, Wav2Vec2Model

            Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(tmp)
            path = tmp
        # One model call for the whole file: the reference.
        whole_encoder = Wav2Vec2Encoder(model_path=path, chunk_seconds=None)
        wave = speech(args.seconds)
        frames = math.ceil(wave.shape[0] * FPS / 16000)
        with torch.no_grad():
            whole = whole_encoder.encode(wave, 16000, num_frames=frames, fps=FPS)
            scale = whole.std(dim=(0, 2))[None, :, None]  # per layer
            label = "random wav2vec2-base" if args.model is None else args.model
            print(f"{label}, {args.seconds:.0f} s of speech, {frames} frames, blocks of 10 s")
            for context in (float(c) for c in args.contexts.split(",")):
                got = block_wise(whole_encoder, wave, frames, context)
                diff = (got - whole).abs() / scale
                print(
                    f"context {context:4.1f} s: max |diff| {float(diff.max()):6.3f} std, "
                    f"mean {float(diff.mean()):6.4f} std"
                )


if __name__ == "__main__":
    main()
