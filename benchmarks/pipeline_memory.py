"""Peak memory of a generation does not grow with the audio length.

Runs the tiny preset (random weights, CPU) on WAV files of several lengths, each in a
fresh process, streaming to an MP4, and prints the peak resident memory of each::

    python benchmarks/pipeline_memory.py --seconds 10 60 600

All figures come from the same run on the same machine; compare their ratios. What
remains proportional to the length is the audio itself (the 16 kHz waveform, 64 KB per
second, held for the encoder and the muxer); frames, latents and audio features are
bounded by one clip and one encoder block.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from emo import EMOPipeline
from emo.pipelines.settings import PipelineSettings

wav, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
pipe = EMOPipeline.from_preset("tiny", face_mask="full")
pipe.settings = PipelineSettings(height=32, width=32, num_inference_steps=1, guidance_scale=1.0)
pipe.set_progress_bar_config(disable=True)
portrait = np.full((64, 64, 3), 128, dtype=np.uint8)
began = time.perf_counter()
video = pipe(portrait, wav, output_path=out, generator=torch.Generator().manual_seed(0))
elapsed = time.perf_counter() - began
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": video.num_frames / video.fps, "frames": video.num_frames, "peak_mib": peak_kib / 1024,
                  "wall_s": elapsed}))
"""


def write_speech_like_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    """A 16-bit WAV of a modulated tone, written in blocks (the parent never holds it all)."""
    import numpy as np
    import soundfile as sf

    block = rate * 10
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for start in range(0, int(seconds * rate), block):
            t = np.arange(start, min(int(seconds * rate), start + block)) / rate
            f.write(0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)))


def run(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        wav = Path(tmp) / "audio.wav"
        write_speech_like_wav(wav, seconds)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(wav), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seconds", type=float, nargs="+", default=[10.0, 60.0, 600.0], help="audio lengths"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    rows = [run(seconds) for seconds in args.seconds]
    for row in rows:
        print(
            f"audio {row['seconds']:7.1f} s  frames {int(row['frames']):6d}  "
            f"peak RSS {row['peak_mib']:8.1f} MiB  "
            f"(x{row['peak_mib'] / rows[0]['peak_mib']:.3f} of the shortest)  "
            f"generation {row['wall_s']:7.1f} s"
        )
    print(f"total benchmark time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
