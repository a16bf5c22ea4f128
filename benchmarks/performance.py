"""Per-step compute of emo against diffusers on identical weights, measured in one run.

Sections (``--only`` picks some; all by default):

``unet``
    emo's :class:`~emo.models.UNet2D` against diffusers' ``UNet2DConditionModel`` with
    the same Stable-Diffusion-1.5-size weights (one frame, 77 text tokens), float32
    and bfloat16 autocast; also emo with its weights in bfloat16 (``--dtype bfloat16``).
    Prints the speed ratio and the largest output difference.
``backbone``
    One Backbone step of a 12-frame clip with reference, audio, temporal and speed
    layers and 3 guidance branches (conditions prepared once, as the pipeline does)
    against diffusers' ``UNetMotionModel`` on the same 12 frames x 3 branches; also
    the same Backbone step with the conditions passed raw at every step (the
    reference projected again each time).
``guidance``
    The guidance branches batched in one call against one call per branch, for the
    ``tiny`` preset and the full-size Backbone (the ``auto`` setting's evidence).
``compile``
    ``torch.compile`` of the tiny preset's Backbone against eager, and the time the
    compilation takes.

Repetitions of the compared sides are interleaved and the medians taken, so each
ratio was measured under the same machine load; absolute times on a shared machine
are noisy. Weights are random (scaled like trained ones); speed does not depend on
their values.

::

    python benchmarks/performance.py                       # everything, 1 thread
    python benchmarks/performance.py --only unet --size 512 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from machine import describe  # benchmarks/machine.py

SECTIONS = ("unet", "backbone", "guidance", "compile")


def random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights with trained-like scales: 1/sqrt(fan_in) matrices, unit norms, small biases."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        if name.endswith(".pe"):  # positional tables stay what they are
            state[name] = value
        elif value.ndim >= 2:
            state[name] = torch.randn(value.shape, generator=gen) / math.sqrt(value[0].numel())
        elif name.endswith("weight"):
            state[name] = torch.ones(value.shape)
        else:
            state[name] = torch.randn(value.shape, generator=gen) * 0.02
    return state


def race(
    sides: dict[str, Callable[[], object]], repeat: int
) -> tuple[dict[str, float], dict[str, object]]:
    """Median seconds per call of each side, repetitions interleaved; first outputs kept."""
    outputs = {name: fn() for name, fn in sides.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, fn in sides.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def max_diff(a: Any, b: Any) -> float:
    return float((a.float() - b.float()).abs().max())


@contextlib.contextmanager
def autocast(enabled: bool) -> Iterator[None]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
        yield


RESULTS: list[tuple[str, str, str]] = []


def report(what: str, value: str, target: str = "") -> None:
    RESULTS.append((what, value, target))
    print(f"  {what}: {value}" + (f"   (target {target})" if target else ""), flush=True)


# -- 1: UNet2D vs UNet2DConditionModel ----------------------------------------------------
def bench_unet(args: argparse.Namespace) -> None:
    import diffusers

    from emo.loaders.diffusers_unet import unet_config_from_diffusers
    from emo.models import UNet2D
    from emo.models.sd15 import SD15_UNET_CONFIG

    config = {**SD15_UNET_CONFIG, "cross_attention_dim": 768}
    with torch.device("meta"):
        theirs = diffusers.UNet2DConditionModel(**config)
        ours = UNet2D.from_config(unet_config_from_diffusers(dict(theirs.config)))
    state = random_state(theirs)
    theirs.load_state_dict(state, assign=True)
    ours.load_state_dict(state, assign=True)  # the very same tensors
    theirs.eval()
    ours.eval()
    gen = torch.Generator().manual_seed(1)
    latent = args.size // 8
    x = torch.randn(1, 4, latent, latent, generator=gen)
    text = torch.randn(1, 77, 768, generator=gen)
    t = torch.tensor([500])
    print(f"\n[unet] SD 1.5 size ({sum(p.numel() for p in ours.parameters()) / 1e6:.0f} M), "
          f"{args.size} px ({latent}x{latent} latents), batch 1, 77 text tokens")  # fmt: skip
    for label, bf16 in (("float32", False), ("bfloat16 autocast", True)):
        with torch.inference_mode(), autocast(bf16):
            times, out = race(
                {
                    "diffusers": lambda: theirs(x, t, text).sample,
                    "emo": lambda: ours(x, t, text),
                },
                args.repeat,
            )
        ratio = times["diffusers"] / times["emo"]
        print(f"  {label}: diffusers {times['diffusers']:.2f} s, emo {times['emo']:.2f} s")
        report(
            f"UNet2D speed vs diffusers, {label}",
            f"{ratio:.2f}x (max |difference| {max_diff(out['emo'], out['diffusers']):.1e})",
            ">= 1.1x",
        )
    # The documented fast path: weights in bfloat16 (--dtype bfloat16), no casts per call.
    with torch.device("meta"):
        ours_bf16 = UNet2D.from_config(ours.config)
    half = {k: v.to(torch.bfloat16) for k, v in ours.state_dict().items()}
    ours_bf16.load_state_dict(half, assign=True)
    ours_bf16.eval()
    with torch.inference_mode():
        times, _ = race(
            {
                "float32": lambda: ours(x, t, text),
                "bfloat16": lambda: ours_bf16(x.bfloat16(), t, text.bfloat16()),
            },
            args.repeat,
        )
    report(
        "emo UNet2D, bfloat16 weights vs float32",
        f"{times['float32'] / times['bfloat16']:.2f}x faster "
        f"({times['bfloat16']:.2f} s vs {times['float32']:.2f} s)",
    )


# -- 2: Backbone step vs UNetMotionModel --------------------------------------------------
def full_size_backbone_pair(size: int) -> tuple[Any, Any, dict[str, Any]]:
    """diffusers' UNetMotionModel and an emo Backbone sharing its spatial and motion weights."""
    import diffusers

    from emo.loaders.animatediff import convert_motion_module_state_dict
    from emo.loaders.diffusers_unet import unet_config_from_diffusers
    from emo.models import Backbone
    from emo.models.sd15 import SD15_UNET_CONFIG

    with torch.device("meta"):
        theirs = diffusers.UNetMotionModel(cross_attention_dim=768)
        unet_config = unet_config_from_diffusers({**SD15_UNET_CONFIG, "cross_attention_dim": 768})
        ours = Backbone(
            **unet_config,
            audio_cross_attention_dim=768,
            speed_embed_dim=320,
            motion_num_attention_heads=8,
        )
    state = random_state(theirs)
    for key, value in theirs.state_dict().items():
        if key.endswith("pos_embed.pe"):
            state[key] = diffusers.models.embeddings.SinusoidalPositionalEmbedding(
                value.shape[-1], value.shape[-2]
            ).pe
    theirs.load_state_dict(state, assign=True)
    shared = {k: v for k, v in state.items() if ".motion_modules." not in k}
    shared.update(convert_motion_module_state_dict(state))
    # EMO's own layers (audio and speed attention, speed encoder) get fresh weights; the
    # spatial and temporal ones are diffusers' very tensors.
    ours.reset_new_branches()
    mine = ours.state_dict()
    ours.load_state_dict({k: v for k, v in shared.items() if k in mine}, strict=False, assign=True)
    own = random_state(ours, seed=1)
    with torch.no_grad():
        for key, value in ours.state_dict().items():
            if key not in shared and not key.endswith(".pe"):
                value.copy_(own[key])
    assert not any(t.is_meta for t in [*ours.parameters(), *ours.buffers()])
    theirs.eval()
    ours.eval()
    return theirs, ours, {"size": size}


def _downscale(path: str, levels: int = 4) -> int:
    """How much smaller than the latents the feature map at a layer path is."""
    if path.startswith("down_blocks."):
        return int(2 ** int(path.split(".")[1]))
    if path.startswith("up_blocks."):
        return int(2 ** (levels - 1 - int(path.split(".")[1])))
    return int(2 ** (levels - 1))  # mid_block


def backbone_inputs(backbone: Any, size: int, frames: int, branches: int) -> dict[str, Any]:
    """Inputs of one guided step as the pipeline prepares them (random values).

    The reference features have two rows ``[portrait, dropped]`` (the three branches
    use rows ``[0, 0, 1]``); the audio of every branch but the first is dropped.
    """
    from emo.models.reference_net import MotionFeatures, ReferenceFeatures

    gen = torch.Generator().manual_seed(2)
    latent = size // 8
    tokens = {}
    for key in backbone.attention_keys:
        width = int(backbone.get_submodule(key).norm1.normalized_shape[0])
        side = latent // _downscale(key)
        tokens[key] = torch.randn(2, side * side, width, generator=gen)
    motion = {}
    for key in backbone.motion_module_keys:
        channels = int(backbone.get_submodule(key).in_channels)
        side = latent // _downscale(key)
        motion[key] = torch.randn(1, channels, 4, side, side, generator=gen) * 0.1
    audio = torch.randn(1, frames, 5, 768, generator=gen)
    return {
        "sample": torch.randn(branches, 4, frames, latent, latent, generator=gen),
        "reference": ReferenceFeatures(tokens, {}),
        "audio": torch.cat([audio, torch.zeros(branches - 1, frames, 5, 768)]),
        "motion": MotionFeatures(motion),
        "speed": torch.full((1, frames + 4), 0.35),
    }


def bench_backbone(args: argparse.Namespace) -> None:
    frames, branches, size = 12, 3, args.backbone_size
    theirs, ours, _ = full_size_backbone_pair(size)
    data = backbone_inputs(ours, size, frames, branches)
    t = torch.tensor([500] * branches)
    text = torch.randn(branches * frames, 77, 768, generator=torch.Generator().manual_seed(3))
    print(
        f"\n[backbone] full size, {size} px, {frames} frames x {branches} branches "
        f"(emo: reference, audio, 4 motion frames, speed; diffusers: UNetMotionModel + text)"
    )
    with torch.inference_mode():
        keys_values = ours.project_reference(data["reference"]).select([0, 0, 1])
        raw = {
            "reference_features": type(data["reference"])(
                {k: v[[0, 0, 1]] for k, v in data["reference"].attention.items()}, {}
            ),
            "audio_tokens": data["audio"],
            "motion_features": data["motion"],
            "speed": data["speed"],
        }
        conditions = ours.prepare_conditions(
            branches, frames, **{**raw, "reference_features": keys_values}, audio_rows=[0]
        )
        times, _ = race(
            {
                "diffusers UNetMotionModel": lambda: theirs(data["sample"], t, text).sample,
                "emo Backbone": lambda: ours(data["sample"], t, conditions=conditions),
                "emo Backbone, raw inputs": lambda: ours(data["sample"], t, **raw),
            },
            args.repeat,
        )
    for name, seconds in times.items():
        print(f"  {name}: {seconds:.2f} s per step")
    report(
        "Backbone step (EMO layers, prepared conditions) / UNetMotionModel",
        f"{times['emo Backbone'] / times['diffusers UNetMotionModel']:.2f}x the time",
        "<= 1.3x",
    )
    report(
        "Backbone step, raw inputs (reference projected every step) / prepared conditions",
        f"{times['emo Backbone, raw inputs'] / times['emo Backbone']:.2f}x the time",
    )
    if "guidance" in args.only:
        one_by_one = [conditions.select([i]) for i in range(branches)]
        with torch.inference_mode():
            times, _ = race(
                {
                    "batched": lambda: ours(data["sample"], t, conditions=conditions),
                    "sequential": lambda: [
                        ours(data["sample"][i : i + 1], t[:1], conditions=c)
                        for i, c in enumerate(one_by_one)
                    ],
                },
                args.repeat,
            )
        report(
            f"guidance, full-size Backbone {size} px, {branches} branches: sequential / batched",
            f"{times['sequential'] / times['batched']:.2f}x the time "
            f"(batched {times['batched']:.2f} s, sequential {times['sequential']:.2f} s)",
        )


# -- 3: guidance batching on the tiny preset ------------------------------------------------
def bench_guidance(args: argparse.Namespace) -> None:
    import numpy as np

    from emo import EMOPipeline

    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full")
    pipe.set_progress_bar_config(disable=True)
    portrait = np.full((160, 160, 3), 128, np.uint8)
    audio = (0.2 * np.sin(np.arange(16000 * 2) / 4.0)).astype(np.float32)
    print("\n[guidance] tiny preset, 2 s of audio, 10 steps, reference guidance on (3 branches)")

    def run(mode: str) -> Callable[[], object]:
        settings = pipe.settings.replace(guidance_batching=mode, reference_guidance_scale=2.0)

        def generate() -> object:
            pipe.settings = settings
            return pipe(
                portrait, audio, audio_rate=16000, num_inference_steps=10, output_type="latent",
                generator=torch.Generator().manual_seed(0), watermark=False,
            )  # fmt: skip

        return generate

    times, _ = race({"batched": run("batched"), "sequential": run("sequential")}, args.repeat)
    report(
        "guidance, tiny preset generation: sequential / batched",
        f"{times['sequential'] / times['batched']:.2f}x the time "
        f"(batched {times['batched']:.2f} s, sequential {times['sequential']:.2f} s)",
    )


# -- 6: torch.compile -------------------------------------------------------------------------
def bench_compile(args: argparse.Namespace) -> None:
    from emo.models.presets import get_preset

    preset = get_preset("tiny")
    torch.manual_seed(0)
    backbone = preset.build_backbone().eval()
    refnet = preset.build_reference_net().eval()
    size = preset.resolution // preset.vae_scale_factor
    f, n = preset.frames_per_clip, preset.motion_frames
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, f, size, size, generator=gen)
    t = torch.tensor([500, 500])
    print(f"\n[compile] tiny preset Backbone, {preset.resolution} px, {f} frames x 2 branches")
    with torch.inference_mode():
        tokens = torch.randn(1, f, 4, preset.audio_token_dim, generator=gen)
        conditions = backbone.prepare_conditions(
            2,
            f,
            reference_features=refnet(torch.randn(1, 4, size, size, generator=gen), 0),
            audio_tokens=torch.cat([tokens, torch.zeros_like(tokens)]),
            audio_rows=[0],
            motion_features=refnet.motion_features(torch.randn(1, 4, n, size, size, generator=gen)),
            speed=torch.full((1, f), 0.35),
        )
        began = time.perf_counter()
        compiled = torch.compile(backbone)
        compiled(sample, t, conditions=conditions)
        compile_seconds = time.perf_counter() - began
        times, out = race(
            {
                "eager": lambda: backbone(sample, t, conditions=conditions),
                "compiled": lambda: compiled(sample, t, conditions=conditions),
            },
            args.repeat * 4,
        )
    report(
        "torch.compile, tiny Backbone step: eager / compiled",
        f"{times['eager'] / times['compiled']:.2f}x (eager {times['eager'] * 1e3:.0f} ms, "
        f"compiled {times['compiled'] * 1e3:.0f} ms, compiling took {compile_seconds:.0f} s; "
        f"max |difference| {max_diff(out['eager'], out['compiled']):.1e})",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--size", type=int, default=256, help="pixels of the UNet2D frame")
    parser.add_argument(
        "--backbone-size", type=int, default=128, help="pixels of the Backbone clip's frames"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    torch.set_num_threads(args.threads)
    print(describe("cpu"))
    print("(ratios: interleaved repetitions in this run, medians; absolute times are noisy)")
    if "unet" in args.only:
        bench_unet(args)
    if "backbone" in args.only:
        bench_backbone(args)
    if "guidance" in args.only:
        bench_guidance(args)
    if "compile" in args.only:
        bench_compile(args)
    print("\nsummary")
    for what, value, target in RESULTS:
        print(f"| {what} | {value} | {target or '-'} |")


if __name__ == "__main__":
    main()
