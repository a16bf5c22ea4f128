"""Train the bundled demonstration model ``emo-demo`` from nothing, on synthetic talking heads.

Every step uses emo's own public tools, the path a user training on their own data takes:

1. data: synthetic talking heads (:mod:`emo.datasets.synthetic`), training identities only,
   rendered at 144 px, cropped around the clip's face region (grown ``--crop`` times) to
   96x96 and written as MP4 files with their ground truth. Two kinds of speech are mixed:
   the formant synthesiser's speech and singing (``clips``), and real speech engines'
   voices, espeak-ng and festival, speaking and singing with their own phone timing as the
   mouth truth (``voice_clips``, :func:`emo.datasets.synthetic.voice_track`; made by
   ``examples/make_voice_data.py``, which needs the engines, or given with ``--voice-data``);
2. ``emo prepare`` (:func:`emo.training.prepare_dataset`): clips, mel audio features, head speed;
3. a small VAE trained on those frames (:func:`emo.training.vae.train_vae`; no Stable
   Diffusion weights are used anywhere), its decoder sharpened with an edge loss
   (:func:`emo.training.vae.finetune_decoder`), then every frame's latents cached
   (:func:`emo.training.encode_dataset_latents`);
4. the three EMO stages with emo's trainer (:func:`emo.training.train`): stage 1 (images:
   Backbone, ReferenceNet, FaceLocator), stage 2 (video: temporal modules + audio attention),
   stage 3 (temporal modules + speed layers), each starting from the previous stage's pipeline;
5. the final pipeline, with its generation defaults, copied to ``--export`` (the package
   folder ``src/emo/pretrained/emo-demo`` when ``--export-package`` is given).

A run records what it did (data size, steps and seconds of every phase, the machine) in
``OUT/record.json``. It resumes: finished phases are skipped, an interrupted stage continues
from its newest checkpoint.

``--time-budget SECONDS`` sizes the three stages to the time left when they start (shares
as in :data:`RECIPE`'s ``stage_shares``): each stage first trains ``calibration_steps``,
measures its seconds per step and sets its step count from that. The steps reached are in
``record.json``; ``--stage-steps`` with them repeats the run step for step.

Usage::

    python examples/train_demo.py --out runs/demo --device cuda --time-budget 420   # shipped
    python examples/train_demo.py --out runs/quick --quick        # a minutes-long smoke run
    python examples/train_demo.py --out runs/demo --stage-steps 3000,6000,1800   # fixed steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
PACKAGE_MODEL = HERE.parent / "src" / "emo" / "pretrained" / "emo-demo"

#: The recipe of the shipped model (``--quick`` scales the steps and data down).
RECIPE: dict[str, Any] = {
    "clips": 240,
    # clips spoken or sung by espeak-ng and festival voices (the held-out ones excluded):
    # without them the model learns the formant synthesiser, not speech
    "voice_clips": 480,
    "seconds": 3.0,
    "render_size": 144,
    # 96 px rather than 64: at 64 px the faces lose hair and features and the identity
    # descriptor retrieves a held-out face at chance; 128 px would cost 1.8x the CPU
    # inference time of 96 px for the bundled model that CI and the README run on CPUs
    "resolution": 96,
    "crop": 1.3,
    "speeds": [0.0, 0.5, 1.0, 2.0],
    "singing": 0.2,
    "vae": {
        "block_out_channels": [32, 64, 128],
        "layers_per_block": 2,
        "batch_size": 32,
        "learning_rate": 1e-3,
    },
    "vae_steps": 3000,
    # 0: no decoder sharpening (finetune_decoder). At 64 px a sharper decoder raised the
    # round trip's identity but cost lip sync on generated latents (docs/guide/demo.md)
    "decoder_steps": 0,
    "stage_steps": [3000, 6000, 1800],
    # shares of --time-budget, as the stages' seconds in the CPU recipe before
    "stage_shares": [0.2, 0.6, 0.2],
    "calibration_steps": 30,
    "learning_rates": [1e-3, 5e-4, 2e-4],
    "batch_sizes": [32, 8, 8],
    # Stage 2 trains every group but the speed layers (the paper freezes the spatial
    # layers there): with minutes of training, the spatial layers must keep learning.
    "stage_trainable": [
        None,
        ["backbone_spatial", "reference_net", "face_locator", "temporal", "audio"],
        None,
    ],
    # v-prediction on a zero-terminal-SNR schedule: at the last timestep the network sees
    # pure noise and must draw the face from the reference alone, as in generation.
    "noise": {"prediction_type": "v_prediction", "zero_snr": True, "timestep_spacing": "trailing"},
    # the mouth, eyes and head turn are a small part of each frame (LossSettings)
    "change_weight": 0.0,
    # noised motion frames against drift from clip to clip (DataSettings.motion_noise)
    "motion_noise": 0.25,
    "seed": 0,
    # generation defaults saved with the model
    "num_inference_steps": 10,
    # Guidance towards the portrait as well as the audio (a third denoiser pass per step)
    # and each clip started from its predecessor's last frame, 90 % noised (docs/guide/demo.md,
    # "Generation defaults").
    "guidance_scale": 2.5,
    "reference_guidance_scale": 1.5,
    "init_strength": 0.9,
    "head_motion_speed": 0.5,
    # Frames written at 512 px (bicubic upscale before the watermark): at the model's own
    # size the mark does not survive a re-encode (docs/guide/provenance.md, "The default
    # output").
    "output_size": 512,
}


#: The recipe of the shipped model's base run (64 px, the formant synthesiser only, 59 min
#: on 2 CPU cores); ``--recipe 64``. The shipped model is this run continued on real
#: voices by ``examples/finetune_demo.py``.
RECIPE_64: dict[str, Any] = {
    **RECIPE,
    "clips": 320,
    "voice_clips": 0,
    "render_size": 96,
    "resolution": 64,
    "vae": {
        "block_out_channels": [16, 32, 64],
        "layers_per_block": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
    },
    "vae_steps": 1200,
    "decoder_steps": 0,
    "batch_sizes": [8, 2, 2],
}
RECIPES = {"96": RECIPE, "64": RECIPE_64}


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Record:
    """``OUT/record.json``: what each phase did and how long it took."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = (
            json.loads(path.read_text()) if path.is_file() else {"phases": {}}
        )

    def done(self, phase: str) -> bool:
        return phase in self.data["phases"]

    def start(self, phase: str) -> float:
        """The wall-clock time the phase first started (kept across resumed runs)."""
        began = float(self.data.setdefault("started", {}).setdefault(phase, time.time()))
        self._write()
        return began

    def save(self, phase: str, **values: Any) -> None:
        self.data["phases"][phase] = values
        self._write()

    def continue_from(self, base: Path) -> None:
        """Chain the record of the model ``base`` continues, when its folder holds one.

        Its ``training.json`` goes under ``base``, and its ``recipe`` is kept as this run's:
        the clips' geometry (render size, crop, resolution) is the base's, and the benchmark
        crops its cases from it.
        """
        base_record = base / "training.json"
        if base_record.is_file():
            self.data.setdefault("base", json.loads(base_record.read_text()))
            if "recipe" in self.data["base"]:
                self.data.setdefault("recipe", self.data["base"]["recipe"])
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.path)


def write_synthetic(
    folder: Path, count: int, split: str, recipe: dict[str, Any], seed: int
) -> list[Path]:
    """Write ``count`` cropped synthetic clips ``<split>_<i>.mp4`` (+ truth ``.json``)."""
    from emo.datasets.synthetic import crop_to_face, make_clip, write_clip

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 23])
    paths = []
    for i in range(count):
        mode = "singing" if rng.uniform() < recipe["singing"] else "speech"
        audio_seed = int(rng.integers(2**31))
        path = folder / f"{split}_{i:05d}.mp4"
        if not path.is_file():
            clip = make_clip(
                seed * 1_000_003 + i,
                audio_seed,
                duration=recipe["seconds"],
                size=recipe["render_size"],
                speed=recipe["speeds"][i % len(recipe["speeds"])],
                mode=mode,  # type: ignore[arg-type]
                split=split,  # type: ignore[arg-type]
            )
            write_clip(crop_to_face(clip, recipe["resolution"], recipe["crop"]), path)
        paths.append(path)
    return paths


def write_png(image: np.ndarray, path: Path) -> None:
    """Write a uint8 ``(h, w, 3)`` image as PNG (PyAV's encoder: no imaging library needed)."""
    from fractions import Fraction

    import av

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height = int(image.shape[1]), int(image.shape[0])
    codec.pix_fmt = "rgb24"
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    path.write_bytes(b"".join(bytes(packet) for packet in codec.encode(frame)))


#: The README example's voice: an English espeak-ng voice held out of training.
EXAMPLE_VOICE = "espeak-ng:en-us+f3"


def write_examples(
    folder: Path,
    recipe: dict[str, Any],
    seconds: float = 6.0,
    *,
    identity: int = 7,
    voice: str = EXAMPLE_VOICE,
    audio_seed: int = 424_242,
) -> None:
    """Write the README's inputs: a held-out identity's portrait speaking with a held-out voice.

    ``demo_portrait.png`` is the first frame of a held-out clip (cropped as the training
    data), ``demo_speech.wav`` its audio (``voice``, a real speech engine's voice never
    trained on; :func:`emo.datasets.synthetic.voice_track`), ``demo_truth.json`` its
    ground truth (the mouth opening per frame, from the engine's phone timing).
    """
    import soundfile as sf

    from emo.datasets.synthetic import crop_to_face, make_clip, voice_split, voice_track

    speaker = next(v for v in voice_split("heldout") if v.key == voice)
    track = voice_track(speaker, audio_seed, seconds)
    clip = make_clip(identity, track, size=recipe["render_size"], speed=0.0, split="heldout")
    cropped = crop_to_face(clip, recipe["resolution"], recipe["crop"])
    folder.mkdir(parents=True, exist_ok=True)
    write_png(cropped.frames[0], folder / "demo_portrait.png")
    sf.write(folder / "demo_speech.wav", clip.audio.waveform, clip.audio.sample_rate)
    (folder / "demo_truth.json").write_text(json.dumps(cropped.truth()) + "\n")


def build_initial_pipeline(vae_dir: Path, out: Path, seed: int) -> Path:
    """Fresh ``demo``-preset networks around the trained VAE, saved as a pipeline folder."""
    from emo.models.vae import AutoencoderKL
    from emo.pipelines.emo_pipeline import EMOPipeline

    pipe = EMOPipeline.from_preset("demo", audio_encoder="mel", face_mask="full", seed=seed)
    pipe.vae = AutoencoderKL.from_pretrained(vae_dir)
    pipe.save_pretrained(out)
    return out


def stage_config(
    stage: int, data: Path, out: Path, init: Path, recipe: dict[str, Any], device: str
) -> dict[str, Any]:
    """The trainer config of one stage (written next to its outputs)."""
    i = stage - 1
    config: dict[str, Any] = {
        "stage": stage,
        "output_dir": os.fspath(out),
        "seed": recipe["seed"] + stage,
        "data": {
            "root": os.fspath(data),
            "zero_motion_probability": 0.1,
            "motion_noise": recipe["motion_noise"] if stage > 1 else 0.0,
        },
        "model": {"init_from": os.fspath(init)},
        "noise": dict(recipe["noise"]),
        "loss": {"change_weight": recipe["change_weight"]},
        "optimizer": {
            "learning_rate": recipe["learning_rates"][i],
            "weight_decay": 0.0,
            "warmup_steps": 20,
            "max_grad_norm": 1.0,
        },
        "dropout": {"reference": 0.05, "audio": 0.1, "both": 0.05},
        "training": {
            "max_steps": recipe["stage_steps"][i],
            "batch_size": recipe["batch_sizes"][i],
            "device": device,
        },
        "checkpoints": {"every": 50, "keep": 2},
        "validation": {"at_end": False},
        "logging": {"every": 10, "progress_bar": False, "tensorboard": False},
    }
    if recipe["stage_trainable"][i] is not None:
        config["training"]["trainable"] = list(recipe["stage_trainable"][i])
    if stage == 1:
        config["data"]["frames_per_clip"] = 1
    return config


def link_voice_data(folders: list[Path], videos: Path, limit: int | None = None) -> int:
    """Link the clips of ``examples/make_voice_data.py`` folders under ``videos/voices_<k>``.

    ``limit``: at most this many clips per folder (the first ones).
    """
    count = 0
    for k, folder in enumerate(folders):
        if not (folder / "voices.json").is_file():
            raise SystemExit(f"{folder} holds no voices.json: make it with make_voice_data.py")
        target = videos / f"voices_{k}"
        target.mkdir(parents=True, exist_ok=True)
        for clip in sorted(folder.glob("*.mp4"))[:limit]:
            for path in (clip, clip.with_suffix(".json")):
                if not (target / path.name).exists():
                    os.symlink(path.resolve(), target / path.name)
            count += 1
        shutil.copyfile(folder / "voices.json", target / "voices.json")
    return count


def stage_steps_for(
    stage_dir: Path, config: dict[str, Any], seconds: float, calibration: int
) -> tuple[int, float]:
    """Train ``calibration`` steps, then the step count that fills ``seconds`` in all.

    Returns the steps and the measured seconds per step (``metrics.jsonl``: the time
    between the first and the last logged step, so start-up is not counted).
    """
    from emo.training import load_config, train

    began = time.perf_counter()
    train(load_config(config), stop_after=calibration)
    spent = time.perf_counter() - began
    rows = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("step", 0) <= calibration]
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        per_step = (last["seconds"] - first["seconds"]) / max(1, last["step"] - first["step"])
    else:  # one logged step: the whole call, start-up included (an overestimate)
        per_step = spent / calibration
    steps = calibration + int(max(0.0, seconds - spent) / max(per_step, 1e-6))
    return max(calibration + 10, steps // 10 * 10), per_step


def run(args: argparse.Namespace) -> Path:
    from emo.training import (
        PrepareSettings,
        encode_dataset_latents,
        load_config,
        prepare_dataset,
        train,
    )
    from emo.training.vae import DecoderSettings, VAESettings, finetune_decoder, train_vae

    began_run = time.perf_counter()
    recipe = dict(RECIPES[args.recipe])
    if args.quick:
        recipe.update(
            clips=8, voice_clips=4 if args.voice_data else 0, vae_steps=20, decoder_steps=min(10, recipe["decoder_steps"]),
            stage_steps=[10, 10, 10], calibration_steps=20, batch_sizes=[4, 2, 2],
            vae={**recipe["vae"], "batch_size": 4},
        )  # fmt: skip
    if args.stage_steps:
        recipe["stage_steps"] = [int(n) for n in args.stage_steps.split(",")]
    if args.steps_scale != 1.0:
        for key in ("vae_steps", "decoder_steps"):
            recipe[key] = max(1, round(recipe[key] * args.steps_scale))
        recipe["stage_steps"] = [max(1, round(n * args.steps_scale)) for n in recipe["stage_steps"]]
    if args.batch_scale != 1:
        # k times the batch in 1/k of the steps: the same samples, rates unchanged. Updates
        # count too: on an H200 the 96 px VAE's 4x batches cost 3x the time per step, and
        # stage 1 got 130 updates, too few to learn faces (docs/guide/demo.md).
        k = args.batch_scale
        recipe["vae"] = {
            **recipe["vae"],
            "batch_size": max(1, round(recipe["vae"]["batch_size"] * k)),
        }
        recipe["batch_sizes"] = [max(1, round(n * k)) for n in recipe["batch_sizes"]]
        for key in ("vae_steps", "decoder_steps"):
            recipe[key] = max(1, round(recipe[key] / k)) if recipe[key] else 0
        recipe["stage_steps"] = [max(1, round(n / k)) for n in recipe["stage_steps"]]
        recipe["batch_scale"] = k
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = Record(out / "record.json")
    record.data["recipe"] = recipe
    record.data.setdefault("machine", _machine())
    if args.device != "cpu":
        record.data.setdefault("machines", {})[args.device] = _machine()

    def phase(name: str) -> bool:
        if record.done(name):
            print(f"[demo] {name}: done before, skipped", flush=True)
            return False
        print(f"[demo] {name} ...", flush=True)
        return True

    def stop_here(name: str) -> bool:
        return args.stop_after == name

    videos = out / "videos"
    if phase("synthetic"):
        began = time.perf_counter()
        paths = write_synthetic(
            videos / "formant", recipe["clips"], "train", recipe, recipe["seed"]
        )
        record.save(
            "synthetic",
            clips=len(paths),
            seconds_of_video=len(paths) * recipe["seconds"],
            seconds=round(time.perf_counter() - began, 1),
        )
    if phase("voices"):
        began = time.perf_counter()
        if args.voice_data:
            count = link_voice_data(
                [Path(p) for p in args.voice_data], videos, 2 if args.quick else None
            )
            source = [os.fspath(Path(p).resolve()) for p in args.voice_data]
        elif recipe["voice_clips"]:
            sys.path.insert(0, os.fspath(HERE))
            from make_voice_data import write_voice_clips

            count = len(
                write_voice_clips(
                    videos / "voices_0",
                    recipe["voice_clips"],
                    seconds=recipe["seconds"],
                    render_size=recipe["render_size"],
                    resolution=recipe["resolution"],
                    crop=recipe["crop"],
                    singing=recipe["singing"],
                    seed=recipe["seed"],
                    log=False,
                )
            )
            source = ["examples/make_voice_data.py"]
        else:
            count, source = 0, []
        record.save(
            "voices", clips=count, source=source, seconds=round(time.perf_counter() - began, 1)
        )

    data = out / "data"
    if phase("prepare"):
        began = time.perf_counter()
        report = prepare_dataset(
            videos,
            data,
            PrepareSettings(
                fps=25.0,
                resolution=recipe["resolution"],
                min_seconds=2.0,
                max_seconds=recipe["seconds"] + 1.0,
                crop_scale=1.0,
                audio_encoder="mel",
                face_mask="full",
            ),
            workers=args.workers,
            progress=False,
        )
        record.save(
            "prepare",
            clips=report.clips,
            skipped=len(report.skipped),
            seconds=round(time.perf_counter() - began, 1),
        )
    if stop_here("prepare"):
        return data
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    vae_dir = out / "vae"
    if args.vae:
        if phase("vae"):
            # A VAE trained before (its own folder, or a pipeline's vae/): no training here.
            # Saved in float32 (a checkpoint may keep it in half precision to stay small).
            from emo.models.vae import AutoencoderKL

            source = Path(args.vae)
            source = source / "vae" if (source / "vae").is_dir() else source
            AutoencoderKL.from_pretrained(source, dtype=torch.float32).save_pretrained(vae_dir)
            if (source / "training.json").is_file():
                shutil.copyfile(source / "training.json", vae_dir / "training.json")
            record.save("vae", source=os.fspath(source.resolve()), seconds=0.0)
    elif phase("vae"):
        result = train_vae(
            data,
            vae_dir,
            VAESettings(
                block_out_channels=tuple(recipe["vae"]["block_out_channels"]),
                layers_per_block=recipe["vae"]["layers_per_block"],
                batch_size=recipe["vae"]["batch_size"],
                learning_rate=recipe["vae"]["learning_rate"],
                max_steps=recipe["vae_steps"],
                seed=recipe["seed"],
                device=device,
            ),
            log_every=250,
            log=lambda line: print(f"[demo] {line}", flush=True),
        )
        record.save(
            "vae",
            steps=result.steps,
            frames=result.frames,
            seconds=round(result.seconds, 1),
            reconstruction_l1=round(result.reconstruction_l1, 4),
            scaling_factor=result.scaling_factor,
        )
    sharp_dir = out / "vae_sharp" if recipe["decoder_steps"] else vae_dir
    if recipe["decoder_steps"] and phase("decoder"):
        result = finetune_decoder(
            data,
            vae_dir,
            sharp_dir,
            DecoderSettings(
                max_steps=recipe["decoder_steps"],
                batch_size=recipe["vae"]["batch_size"],
                seed=recipe["seed"],
                device=device,
            ),
            log_every=250,
            log=lambda line: print(f"[demo] {line}", flush=True),
        )
        record.save(
            "decoder",
            steps=result.steps,
            seconds=round(result.seconds, 1),
            reconstruction_l1=round(result.reconstruction_l1, 4),
        )
    # The stages read cached latents: encoding the frames at every step would cost
    # more than the diffusion networks themselves at this size.
    latent_data = out / "data_latents"
    if phase("latents"):
        began = time.perf_counter()
        clips = encode_dataset_latents(data, latent_data, sharp_dir, device=device)
        record.save("latents", clips=clips, seconds=round(time.perf_counter() - began, 1))
    init = Path(args.init) if args.init else out / "init"
    if phase("init"):
        if not args.init:
            build_initial_pipeline(sharp_dir, init, recipe["seed"])
        record.save("init", folder=os.fspath(init.resolve()))
    previous = init
    for stage in (1, 2, 3):
        stage_dir = out / f"stage{stage}"
        name = f"stage{stage}"
        if phase(name):
            config = stage_config(stage, latent_data, stage_dir, previous, recipe, device)
            stage_dir.mkdir(parents=True, exist_ok=True)
            # Wall time from the stage's first start: a resumed stage counts its earlier run.
            began = record.start(name)
            per_step = None
            if args.time_budget:
                left = args.time_budget - (time.perf_counter() - began_run)
                shares = recipe["stage_shares"][stage - 1 :]
                seconds = left * shares[0] / sum(shares)
                steps, per_step = stage_steps_for(
                    stage_dir, config, seconds, recipe["calibration_steps"]
                )
                config["training"]["max_steps"] = steps
                print(f"[demo] {name}: {per_step:.4f} s/step -> {steps} steps", flush=True)
            (stage_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            result = train(load_config(config))
            record.save(
                name,
                steps=result.step,
                seconds=round(time.time() - began, 1),
                seconds_per_step=None if per_step is None else round(per_step, 5),
                final_loss=result.losses[-1][1] if result.losses else None,
                trained_parameters=len(result.trained_parameters),
                resumed_from=os.fspath(result.resumed_from) if result.resumed_from else None,
            )
        previous = stage_dir / "pipeline"
    final = finish(previous, out / "emo-demo", recipe)
    record.data["total_seconds"] = round(
        sum(float(p.get("seconds", 0.0)) for p in record.data["phases"].values()), 1
    )
    text = json.dumps(record.data, indent=2) + "\n"
    (out / "record.json").write_text(text)
    (final / "training.json").write_text(text)  # the model carries how it was made
    if args.export:
        export(final, Path(args.export))
    return final


def finish(pipeline_dir: Path, target: Path, recipe: dict[str, Any]) -> Path:
    """The trained pipeline with its generation defaults (steps, guidance, crop, speed, output size)."""
    from emo.pipelines.emo_pipeline import EMOPipeline

    pipe = EMOPipeline.from_pretrained(pipeline_dir, face_mask="full")
    pipe.settings = pipe.settings.replace(
        num_inference_steps=recipe["num_inference_steps"],
        guidance_scale=recipe["guidance_scale"],
        reference_guidance_scale=recipe["reference_guidance_scale"],
        init_strength=recipe["init_strength"],
        head_motion_speed=recipe["head_motion_speed"],
        face_crop_scale=1.0,
        output_size=recipe["output_size"],
    )
    pipe.save_pretrained(target)
    return target


def export(source: Path, target: Path) -> None:
    """Copy the finished model folder to ``target`` (replacing it)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    print(f"[demo] exported the model to {target}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo", help="run folder (resumed when it exists)")
    parser.add_argument("--quick", action="store_true", help="tiny data and steps: a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--stage-steps",
        default=None,
        help="steps of stages 1,2,3 (e.g. 200,450,50); a stage cut short resumes and ends there",
    )
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="multiply every step count (e.g. 4 on a GPU)"
    )
    parser.add_argument(
        "--vae",
        default=None,
        help="a VAE trained before (folder, or a pipeline's; float32 or half): no VAE phase",
    )
    parser.add_argument(
        "--init",
        default=None,
        help="start stage 1 from this pipeline (trained with the same VAE) instead of a new one",
    )
    parser.add_argument(
        "--batch-scale",
        type=float,
        default=1,
        help="multiply every batch size, divide every step count (0.25: CPU-sized batches)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=1, help="processes of emo prepare")
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="96",
        help="96 (next model) or 64 (shipped base)",
    )
    parser.add_argument(
        "--voice-data",
        nargs="+",
        default=None,
        help="folders made by examples/make_voice_data.py (instead of making the voice clips)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds from the start of this process by which the three stages end",
    )
    parser.add_argument(
        "--stop-after", choices=("prepare",), default=None, help="stop after this phase"
    )
    parser.add_argument("--export", default=None, help="copy the finished model folder here")
    parser.add_argument(
        "--export-package",
        action="store_true",
        help=f"copy the finished model into the package ({PACKAGE_MODEL})",
    )
    parser.add_argument(
        "--write-examples",
        action="store_true",
        help="only write examples/demo_portrait.png, demo_speech.wav and demo_truth.json",
    )
    parser.add_argument("--example-identity", type=int, default=7, help="held-out identity seed")
    parser.add_argument("--example-seed", type=int, default=424_242, help="the speech's seed")
    parser.add_argument(
        "--example-resolution", type=int, default=64, help="the bundled model's frame size"
    )
    parser.add_argument("--example-folder", default=os.fspath(HERE), help="where they go")
    args = parser.parse_args(argv)
    if args.write_examples:
        size = args.example_resolution
        recipe = dict(RECIPE, resolution=size, render_size=size * 3 // 2)
        write_examples(
            Path(args.example_folder), recipe, identity=args.example_identity,
            audio_seed=args.example_seed,
        )  # fmt: skip
        return 0
    if args.export_package:
        args.export = os.fspath(PACKAGE_MODEL)
    if args.threads:
        torch.set_num_threads(args.threads)
    final = run(args)
    print(f"[demo] model: {final}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
