"""Speed and memory of vocal separation (emo.audio.vocals), per minute of audio.

Runs :class:`emo.audio.vocals.VocalSeparator` on a synthetic stereo song written to a WAV
file (44.1 kHz float) and prints, in a fresh process per length, the seconds per minute of
audio, the model calls, the peak resident memory (``ru_maxrss``) and the peak of numpy's
traced buffers (the mono 16 kHz output, which grows with the audio, included; it is also
printed). With ``--identity-check`` it also prints how far an identity model's output
is from the band-limited input (the STFT round trip and the overlap averaging).

Usage::

    python benchmarks/vocal_separation.py [--model pretrained_models/audio_separator/Kim_Vocal_2.onnx]
        [--minutes 1,10] [--threads N] [--identity-check]

Without ``--model`` an identity model of Kim_Vocal_2's signature ``(batch, 4, 3072, 256)``
stands in (built with onnx's helper API, so ``onnx`` must be installed): the figures are
then emo's own cost around the model (resampling, STFT, inverse STFT, averaging), not the
network's. Run it with Hallo's file to measure the real separation.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 44100


def song(seconds: float) -> np.ndarray:
    """``(2, n)`` float32: tones, a chirp and a gliding voice, stereo, peak about 0.8."""
    t = np.arange(round(seconds * RATE)) / RATE
    voice = 0.3 * np.sin(2 * np.pi * (220 * t + 40 * np.sin(2 * np.pi * 0.7 * t)))
    chirp = 0.2 * np.sin(2 * np.pi * (300 * t + 15 * t**2 % 4000))
    tones = 0.1 * np.sin(2 * np.pi * 1234.5 * t) + 0.05 * np.sin(2 * np.pi * 7000 * t)
    return np.stack([voice + chirp + tones, voice + 0.5 * chirp + tones]).astype(np.float32)


def identity_model(path: Path) -> Path:
    from onnx import TensorProto, helper

    shape = ["batch", 4, 3072, 256]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def separator(model: str | None, threads: int | None, folder: Path) -> object:
    from emo.audio.vocals import KIM_VOCAL_2, VocalSeparator

    if model is None:
        return VocalSeparator(
            identity_model(folder / "identity.onnx"), config=KIM_VOCAL_2, threads=threads
        )
    return VocalSeparator(model, threads=threads)


def child(minutes: float, model: str | None, threads: int | None) -> None:
    """Measure one length in this (fresh) process; print a JSON line."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav = folder / "song.wav"
        with sf.SoundFile(wav, "w", RATE, 2, subtype="FLOAT") as handle:
            for start in range(0, round(minutes * 60), 30):
                handle.write(song(min(30, minutes * 60 - start)).T)
        sep = separator(model, threads, folder)
        sep.load()  # type: ignore[attr-defined]
        calls: list[int] = []
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        start = time.perf_counter()
        vocals = sep.separate_file(  # type: ignore[attr-defined]
            wav, output_rate=16000, callback=lambda done, total: calls.append(total)
        )
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "minutes": minutes,
                "seconds_per_minute": seconds / minutes,
                "calls": calls[-1],
                "output_samples": int(vocals.shape[0]),
                "peak_rss_mb": rss / 1024,
                "rss_before_mb": rss_before / 1024,
                "peak_numpy_mb": traced / 2**20,
                "output_mb": int(vocals.shape[0]) * 4 / 2**20,
                "input_file_mb": minutes * 60 * RATE * 8 / 2**20,
            }
        )
    )


def identity_check(threads: int | None) -> None:
    from emo.audio.vocals import KIM_VOCAL_2

    with tempfile.TemporaryDirectory() as tmp:
        sep = separator(None, threads, Path(tmp))
        mix = song(60.0)
        out = sep.separate_stereo(mix, RATE)  # type: ignore[attr-defined]
        err = np.abs(out - KIM_VOCAL_2.compensate * mix)
        inner = err[:, KIM_VOCAL_2.n_fft : -KIM_VOCAL_2.n_fft]
        print(
            f"identity model, 60 s, Kim_Vocal_2 settings: max |out - 1.009 mix| = {err.max():.2e}"
            f" (away from the first/last n_fft samples: {inner.max():.2e}; mix peak "
            f"{np.abs(mix).max():.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an MDX-Net .onnx (default: identity)")
    parser.add_argument("--minutes", default="1,10", help="lengths, comma-separated")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--identity-check", action="store_true")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.model, args.threads)
        return
    if args.identity_check:
        identity_check(args.threads)
    for minutes in (float(m) for m in args.minutes.split(",")):
        command = [sys.executable, __file__, "--child", str(minutes)]
        if args.model:
            command += ["--model", args.model]
        if args.threads:
            command += ["--threads", str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        print(result.stdout.strip())


if __name__ == "__main__":
    main()
