"""Peak memory and time of C2PA signing and validation for a long video.

Makes a long MP4 the size a generation writes (512x512 H.264 at a constant bit rate
of 1.5 Mbit/s with AAC audio: 10 minutes are about 115 MB; synthetic frames, so it
takes seconds), then, each in a fresh process so the peaks do not mix:

- ``sign``: what a writer does on close (:class:`emo.provenance.signing.ContentSigner`,
  file streams in and out, emo's SDK settings);
- ``validate``: what ``emo detect`` does (:func:`emo.provenance.manifest_check.read_manifest`);
- ``sign (SDK defaults)`` and ``validate that`` (the contrast): the same signing through
  file streams with the SDK's default settings, and reading that file; they show what
  emo's settings change, and that the measurement sees a file-sized buffer when there
  is one.

Peak memory is the process's peak resident set size (``VmHWM``, reset just before the
operation), reported as the increase over the resident set size just before it
(after imports and key loading). The video is written under ``--workdir`` (default: the system's
temporary folder), never into the repository.

::

    python benchmarks/c2pa_signing.py                       # 10 minutes, 512 px
    python benchmarks/c2pa_signing.py --seconds 60 --keep   # quicker; keep the files
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_MB = 1024 * 1024


def make_video(path: Path, seconds: float, size: int, bitrate: int, fps: int = 25) -> None:
    """A synthetic talking-head-sized MP4: a still backdrop, a moving square, a tone."""
    import av

    frames = int(seconds * fps)
    rate = 16000
    with av.open(os.fspath(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.bit_rate = bitrate
        kbit = f"{bitrate // 1000}k"
        # Constant bit rate with filler data: the file is as large as a real one at this rate.
        video.options = {
            "preset": "ultrafast",
            "x264-params": "nal-hrd=cbr:filler=1",
            "minrate": kbit,
            "maxrate": kbit,
            "bufsize": kbit,
        }
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        backdrop = np.full((size, size, 3), 96, np.uint8)
        backdrop[:, : size // 2] = 160
        samples_per_frame = rate // fps
        tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
        for i in range(frames):
            image = backdrop.copy()
            top = (i * 3) % (size - 64)
            image[top : top + 64, size // 3 : size // 3 + 64] = 240
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
            start = (i * samples_per_frame) % (rate - samples_per_frame)
            block = tone[start : start + samples_per_frame][None]
            sound = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            sound.sample_rate = rate
            sound.pts = i * samples_per_frame
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the peak


def _reset_peak() -> None:
    """Reset the peak resident set size to the current one (Linux 4.0+)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(mode: str, source: Path, dest: Path) -> dict[str, float | str]:
    """Run one operation in this process; return its time and peak memory over the start."""
    from emo.provenance.credentials import SigningCredentials
    from emo.provenance.manifest import GenerationFacts
    from emo.provenance.manifest_check import read_manifest
    from emo.provenance.signing import ContentSigner, import_c2pa

    c2pa = import_c2pa()
    signer = ContentSigner(SigningCredentials.development(), GenerationFacts(model_name="bench"))
    _reset_peak()
    before = _status_mb("VmRSS")
    began = time.perf_counter()
    state = ""
    if mode == "sign":
        signer.sign(source, dest, title=dest.name)
    elif mode.startswith("validate"):
        state = read_manifest(source).state
    elif mode == "sign (SDK defaults)":
        creds = signer.credentials
        info = c2pa.C2paSignerInfo(b"es256", creds.certificate_chain, creds.private_key, None)
        with (
            c2pa.Signer.from_info(info) as sdk_signer,
            c2pa.Builder(signer.manifest(dest.name)) as builder,
            open(source, "rb") as reader,
            open(dest, "w+b") as writer,
        ):
            builder.sign(sdk_signer, "video/mp4", reader, writer)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - began
    peak = _status_mb("VmHWM")
    return {
        "mode": mode,
        "seconds": seconds,
        "baseline_mb": before,
        "peak_mb": peak,
        "increase_mb": peak - before,
        "state": state,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="video length (600)")
    parser.add_argument("--size", type=int, default=512, help="frame size (512)")
    parser.add_argument("--bitrate", type=int, default=1_500_000, help="bit/s (1.5 M)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the videos go")
    parser.add_argument("--keep", action="store_true", help="keep the videos")
    parser.add_argument(
        "--measure", nargs=3, metavar=("MODE", "SOURCE", "DEST"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        mode, source, dest = args.measure
        print(json.dumps(measure(mode, Path(source), Path(dest))))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="emo-c2pa-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    source, signed = workdir / "long.mp4", workdir / "long-signed.mp4"
    plain_signed = workdir / "long-signed-sdk-defaults.mp4"
    began = time.perf_counter()
    make_video(source, args.seconds, args.size, args.bitrate)
    size_mb = source.stat().st_size / _MB
    print(
        f"video: {args.seconds:.0f} s, {args.size}x{args.size}, {size_mb:.1f} MiB "
        f"(made in {time.perf_counter() - began:.0f} s) at {source}"
    )
    rows = []
    for mode, src, dst in (
        ("sign", source, signed),
        ("validate", signed, signed),
        ("sign (SDK defaults)", source, plain_signed),
        ("validate that", plain_signed, plain_signed),
    ):
        command = [sys.executable, __file__, "--measure", mode, os.fspath(src), os.fspath(dst)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{'operation':<20} {'time s':>8} {'MiB/s':>8} {'baseline MiB':>13} {'peak MiB':>9} {'increase MiB':>13}"
    )
    for row in rows:
        rate = size_mb / float(row["seconds"])
        note = f"  ({row['state']})" if row["state"] else ""
        print(
            f"{row['mode']:<20} {row['seconds']:>8.2f} {rate:>8.0f} {row['baseline_mb']:>13.0f} "
            f"{row['peak_mb']:>9.0f} {row['increase_mb']:>13.1f}{note}"
        )
    print(
        f"signed file: {signed.stat().st_size / _MB:.1f} MiB (+{signed.stat().st_size - source.stat().st_size} bytes)"
    )
    if not args.keep:
        for path in (source, signed, plain_signed):
            path.unlink(missing_ok=True)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
