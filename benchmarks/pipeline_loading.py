"""Loading a saved full-size pipeline: peak memory and time, against the weights' size and a plain read.

Saves a pipeline of a preset's shape with random weights (``sd15``: the paper's
size, SD-1.5 Backbone and ReferenceNet, VAE, face locator, audio projection, and a
random wav2vec2-base audio encoder), then measures, each in a fresh process:

- ``read``: reading every weights file of the folder (64 MiB at a time into one
  reused buffer): the floor of any loader;
- ``load``: ``EMOPipeline.from_pretrained(folder)`` (meta-device construction,
  weights read straight into the parameters);
- ``plain`` (with ``--plain``): the way emo loaded before, each network randomly
  initialised, then the checkpoint copied in (twice the memory: skipped when the
  machine lacks it).

Peak memory is the process's peak resident set (``VmHWM``), compared with the
total size of the weights files. ``read`` and ``load`` alternate ``--repeat``
times and the fastest of each counts, so both see the same page cache and load::

    python benchmarks/pipeline_loading.py                       # sd15, ~9 GB of weights
    python benchmarks/pipeline_loading.py --preset tiny --plain  # seconds, for a smoke run
    python benchmarks/pipeline_loading.py --folder saved/ --keep # reuse a saved folder

The folder is written under ``--folder`` (default: a temporary folder, removed at
the end unless ``--keep``); an existing pipeline there is reused as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from machine import describe

WEIGHT_SUFFIXES = (".safetensors", ".bin")
NETWORKS = ("vae", "reference_net", "backbone", "face_locator", "audio_projection")

_COMMON = r"""
import json, os, sys, time
def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
def report(**data):
    print("RESULT " + json.dumps(data))
"""

_SAVE = (
    _COMMON
    + r"""
import torch
from emo import EMOPipeline
folder, preset, wav2vec2 = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
torch.set_num_threads(1)
encoder = "mel"
if wav2vec2:
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    from emo.audio.wav2vec2 import Wav2Vec2Encoder
    torch.manual_seed(0)
    source = folder + ".wav2vec2"
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(source)  # base size, random weights
    encoder = Wav2Vec2Encoder(model_path=source)
pipe = EMOPipeline.from_preset(preset, audio_encoder=encoder, face_mask="full", seed=0)
pipe.save_pretrained(folder)
report(parameters=sum(p.numel() for n in ("vae", "reference_net", "backbone", "face_locator",
       "audio_projection") for p in getattr(pipe, n).parameters()))
"""
)

_READ = (
    _COMMON
    + r"""
paths = json.loads(sys.argv[1])
buffer = bytearray(64 << 20)
view = memoryview(buffer)
per_file = {}
for path in paths:
    began = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.readinto(view):
            pass
    per_file[path] = time.perf_counter() - began
report(seconds=sum(per_file.values()), per_file=per_file, peak_kib=status_kib("VmHWM"))
"""
)

_SAFETENSORS = (
    _COMMON
    + r"""
import torch
from safetensors.torch import load_file
paths = json.loads(sys.argv[1])
per_file = {}
for path in paths:
    began = time.perf_counter()
    for tensor in load_file(path).values():  # mapped: touch every page to read it
        if tensor.numel():
            tensor.reshape(-1).view(torch.uint8)[::4096].sum()
    per_file[path] = time.perf_counter() - began
report(seconds=sum(per_file.values()), per_file=per_file, peak_kib=status_kib("VmHWM"))
"""
)

_LOAD = (
    _COMMON
    + r"""
import torch
from emo import EMOPipeline
from emo.pipelines import persistence  # the modules the load needs are imported before timing:
from emo.audio import wav2vec2  # imports are not loading
from transformers import Wav2Vec2Model
from emo.configuration import import_class
from emo.modeling import load_state_dict_file
from emo.pipelines.components import MODEL_COMPONENTS
folder, way = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)

def touch(module):
    # A loader may map files and read them only when used (safetensors, transformers):
    # touch one byte of every page of every weight, so each way has read what it loaded.
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.numel():
            tensor.detach().reshape(-1).view(torch.uint8)[::4096].sum()

def plain(name):  # initialise the network, then copy the checkpoint in (emo before the meta load)
    cls = import_class(index[name]["class"], what=name)
    model = cls.from_config(json.loads(open(os.path.join(folder, name, "config.json")).read()))
    model.load_weights(load_state_dict_file(os.path.join(folder, name, "model.safetensors")))
    return model.eval()

index = json.loads(open(os.path.join(folder, "model_index.json")).read())["components"]
before = status_kib("VmRSS")
began = time.perf_counter()
if way == "networks":  # emo's own networks alone, each through its from_pretrained
    kept = []  # every network stays in memory, as in a pipeline
    for name in MODEL_COMPONENTS:
        cls = import_class(index[name]["class"], what=name)
        kept.append(cls.from_pretrained(os.path.join(folder, name)))
        touch(kept[-1])
    returned = time.perf_counter() - began
else:
    if way == "plain":
        pipe = EMOPipeline.from_pretrained(folder, **{n: plain(n) for n in MODEL_COMPONENTS})
    else:
        pipe = EMOPipeline.from_pretrained(folder)
    returned = time.perf_counter() - began
    for module in [getattr(pipe, n) for n in MODEL_COMPONENTS] + [getattr(pipe.audio_encoder, "model", torch.nn.Module())]:
        touch(module)
seconds = time.perf_counter() - began
report(seconds=seconds, returned=returned, peak_kib=status_kib("VmHWM"), before_kib=before)
"""
)


def child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh Python process and return its ``RESULT`` line."""
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise SystemExit(f"child process failed:\n{run.stderr[-3000:]}")
    line = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")][-1]
    data: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return data


def weight_files(folder: Path) -> list[Path]:
    """Every weights file of a saved pipeline (the audio encoder's included)."""
    return sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def available_kib() -> int:
    """``MemAvailable`` of the machine (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def ratio_line(name: str, row: dict[str, float], read: float, mapped: float, size: int) -> str:
    """One printed row: time against both baselines, peak memory against the weights."""
    gib = 2**30
    peak, base = row["peak_kib"] * 1024, row["before_kib"] * 1024
    return (
        f"{name:<28}: {row['seconds']:6.2f} s = {row['seconds'] / read:.2f}x the read,"
        f" {row['seconds'] / mapped:.2f}x load_file (returned after {row['returned']:.2f} s);"
        f" peak RSS {peak / gib:.2f} GiB = {peak / size:.2f}x the weights"
        f" ({(peak - base) / size:.2f}x above the {base / gib:.2f} GiB before loading)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="sd15")
    parser.add_argument("--folder", type=Path, default=None, help="where the pipeline is saved")
    parser.add_argument("--keep", action="store_true", help="keep the saved folder")
    parser.add_argument("--no-wav2vec2", action="store_true", help="mel audio (no weights)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (the fastest is kept)")
    parser.add_argument("--plain", action="store_true", help="also time the init-then-copy load")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc (Linux)")
    temporary = args.folder is None
    root = Path(tempfile.mkdtemp(prefix="emo-load-")) if temporary else args.folder.parent
    folder = root / "pipeline" if temporary else args.folder
    try:
        if not (folder / "model_index.json").is_file():
            print(f"saving a random {args.preset} pipeline to {folder} ...", flush=True)
            made = child(_SAVE, str(folder), args.preset, "0" if args.no_wav2vec2 else "1")
            print(f"  {made['parameters'] / 1e9:.3f} B parameters in the networks")
        files = weight_files(folder)
        networks = [p for p in files if p.parent.name in NETWORKS]
        names = json.dumps([str(p) for p in files])
        ways = {"read": (_READ, names), "safetensors": (_SAFETENSORS, names)}
        ways |= {w: (_LOAD, str(folder), w) for w in ("pipeline", "networks")}
        rows: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
        for _ in range(args.repeat):  # alternating: every way sees the same machine state
            for way, call in ways.items():
                rows[way].append(child(*call))
        best = {way: min(r, key=lambda row: row["seconds"]) for way, r in rows.items()}
        plain = None
        if args.plain:
            if available_kib() * 1024 > 2.5 * sum(p.stat().st_size for p in files):
                plain = child(_LOAD, str(folder), "plain")
            else:
                print("plain load skipped: it needs about twice the weights' size of free memory")
        sizes = {p: p.stat().st_size for p in files}
    finally:
        if temporary and not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    gib = 2**30
    size, net_size = sum(sizes.values()), sum(sizes[p] for p in networks)
    read, mapped = best["read"]["seconds"], best["safetensors"]["seconds"]
    net_read = sum(best["read"]["per_file"][str(p)] for p in networks)
    net_mapped = sum(best["safetensors"]["per_file"][str(p)] for p in networks)
    print(describe())
    print(
        f"preset {args.preset}: {len(files)} weights files, {size / gib:.2f} GiB"
        f" ({net_size / gib:.2f} GiB in emo's networks, the rest the audio encoder)"
    )
    print(f"read the files (64 MiB chunks)  : {read:6.2f} s ({size / gib / read:.2f} GiB/s)")
    print(
        f"safetensors load_file + touch   : {mapped:6.2f} s"
        f" (peak RSS {best['safetensors']['peak_kib'] * 1024 / gib:.2f} GiB: one file at a time)"
    )
    print(ratio_line("EMOPipeline.from_pretrained", best["pipeline"], read, mapped, size))
    print(ratio_line("emo's networks alone", best["networks"], net_read, net_mapped, net_size))
    if plain is not None:
        print(ratio_line("plain (init + copy)", plain, read, mapped, size))
    print(
        "'touch': one byte of every page of every weight is read after the load, so lazily "
        "mapped weights count; times are noisy on a shared machine, the ratios come from one "
        f"run (fastest of {args.repeat} alternating rounds)"
    )
    if temporary and args.keep:
        print(f"kept {folder}")


if __name__ == "__main__":
    main()
