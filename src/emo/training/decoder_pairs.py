"""Latents the diffusion model draws, paired with the frames they stand for.

A VAE decoder trained only on the encoder's latents (or those latents plus Gaussian
noise) decodes what a trained diffusion model generates with the encoder's
expectations: a blurred decoder averages away the generated latents' errors, a
sharp one draws them (a mouth left ajar in a pause). These pairs let
:func:`emo.training.vae.finetune_decoder` learn from the model's own errors instead:
each latent is the model's prediction of a training clip's clean latents from a
noised copy, under the clip's own reference, audio, motion frames and head speed,
with the guidance the model generates with; its target is the clip's true frame.
Noised to a middle timestep, the clip keeps its pose and layout (so the pair is
aligned pixel for pixel) and the model must draw the details -- the mouth, the eyes
-- as it does when it generates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange

from emo.errors import ConfigError
from emo.training.devices import check_device, resolve_device

__all__ = ["GeneratedPairSettings", "GeneratedPairs", "generated_latent_pairs"]


@dataclass(frozen=True)
class GeneratedPairSettings:
    """How :func:`generated_latent_pairs` samples the model's predictions.

    Attributes
    ----------
    clips
        Training samples (clips of the model's ``frames_per_clip`` frames) to predict;
        each gives that many pairs.
    batch_size
        Clips per forward pass.
    min_timestep, max_timestep
        Each clip is noised to a timestep drawn uniformly from this range (of the
        scheduler's training timesteps): low keeps most of the clip, high leaves the
        model more to draw.
    audio_guidance, reference_guidance
        Guidance scales; ``None`` takes the model's own generation settings.
    seed
        Seed of the clip choice, the timesteps and the noise.
    threads
        ``torch.set_num_threads`` for the run; ``None`` leaves torch's default.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    clips: int = 256
    batch_size: int = 4
    min_timestep: int = 100
    max_timestep: int = 600
    audio_guidance: float | None = None
    reference_guidance: float | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_device("GeneratedPairSettings.device", self.device)
        for name in ("clips", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"GeneratedPairSettings.{name} must be an int >= 1, got {value!r}"
                )
        low, high = self.min_timestep, self.max_timestep
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
            raise ConfigError(
                "GeneratedPairSettings.min_timestep and max_timestep must be ints with "
                f"0 <= min_timestep <= max_timestep, got {low!r} and {high!r}"
            )
        for name in ("audio_guidance", "reference_guidance"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
            ):
                raise ConfigError(
                    f"GeneratedPairSettings.{name} must be None or a number >= 0, got {value!r}"
                )


@dataclass(frozen=True)
class GeneratedPairs:
    """The model's predicted latents and the true frames they should decode to.

    Attributes
    ----------
    latents
        ``(n, c, h, w)`` float32, in the VAE's own units (divided by its scaling
        factor): what ``vae.decode`` takes.
    frames
        ``(n, H, W, 3)`` uint8, the true frames.
    timesteps
        ``(n,)`` the timestep each latent was predicted from.
    """

    latents: torch.Tensor
    frames: torch.Tensor
    timesteps: torch.Tensor

    def __len__(self) -> int:
        return int(self.latents.shape[0])


@torch.no_grad()
def generated_latent_pairs(
    model_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    settings: GeneratedPairSettings | None = None,
) -> GeneratedPairs:
    """Predict clean latents of training clips with a trained model, paired with the truth.

    Parameters
    ----------
    model_dir
        A trained pipeline folder (its VAE, networks, scheduler and generation settings).
    data_root
        A folder written by ``emo prepare`` (with audio features, and head speed when
        the model has speed layers); latents it caches with the model's VAE are used,
        otherwise the frames are encoded.
    settings
        :class:`GeneratedPairSettings`; the defaults when ``None``.

    Returns
    -------
    GeneratedPairs
        ``clips * frames_per_clip`` pairs, in sample order.

    Raises
    ------
    InputError
        If the model or the data cannot be read.
    ConfigError
        If the data does not fit the model (too short clips, no audio).
    """
    from emo.denoiser import EMODenoiser
    from emo.pipelines.conditioning import guidance_branch_count, guided_prediction
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.schedulers.core import predicted_x0
    from emo.training.data_format import read_dataset_info
    from emo.training.dataset import ClipDataset, SampleSpec
    from emo.training.loss import batch_latents, model_prediction
    from emo.training.prepare import vae_fingerprint

    cfg = settings or GeneratedPairSettings()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, "generated latent pairs")
    pipe = EMOPipeline.from_pretrained(model_dir, dtype=torch.float32).to(device)
    limit = int(pipe.scheduler.config["num_train_timesteps"]) - 1
    if cfg.max_timestep > limit:
        raise ConfigError(
            f"GeneratedPairSettings.max_timestep {cfg.max_timestep} exceeds the scheduler's "
            f"last training timestep {limit}"
        )
    denoiser = EMODenoiser(
        pipe.reference_net, pipe.backbone, pipe.face_locator, pipe.audio_projection
    ).eval()
    speed_context = int(pipe.backbone.config.get("speed_context_frames", 0) or 0)
    spec = SampleSpec(
        frames_per_clip=pipe.settings.frames_per_clip,
        motion_frames=pipe.settings.motion_frames,
        audio_context=denoiser.audio_context,
        with_speed=pipe.backbone.speed_encoder is not None,
        speed_context=speed_context,
    )
    info = read_dataset_info(Path(data_root))
    cached = (info.get("latents") or {}).get("vae_sha256") == vae_fingerprint(pipe.vae)
    source = ClipDataset(data_root, spec, seed=cfg.seed, use_latents=cached)
    # Same seed, same sample: the frames dataset picks the very frames the latents are of.
    truth = ClipDataset(data_root, spec, seed=cfg.seed, use_latents=False) if cached else source
    audio_scale = pipe.settings.guidance_scale if cfg.audio_guidance is None else cfg.audio_guidance
    reference_scale = (
        pipe.settings.reference_guidance_scale
        if cfg.reference_guidance is None
        else cfg.reference_guidance
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    order = [int(i) for i in torch.randperm(len(source), generator=gen)]
    # ``clips`` samples: the permuted clips, again in later epochs (other frame windows)
    # when more are asked for than the data set has.
    chunks: list[tuple[int, list[int]]] = []
    for epoch in range(math.ceil(cfg.clips / len(order))):
        wanted = order[: cfg.clips - epoch * len(order)]
        step = cfg.batch_size
        chunks += [(epoch, wanted[i : i + step]) for i in range(0, len(wanted), step)]
    scaling = float(pipe.vae.config["scaling_factor"])
    latents, frames, steps = [], [], []
    for epoch, indices in chunks:
        batch = source.batch(indices, epoch)
        truth_batch = truth.batch(indices, epoch) if cached else batch
        clean = batch_latents(pipe, batch["target"], cached)
        reference = batch_latents(pipe, batch["reference"][:, :, None], cached)[:, :, 0]
        b = clean.shape[0]
        t = torch.randint(cfg.min_timestep, cfg.max_timestep + 1, (b,), generator=gen)
        noise = torch.randn(clean.shape, generator=gen).to(device)
        t = t.to(device)
        noisy = pipe.scheduler.add_noise(clean, noise, t)
        count = guidance_branch_count(audio_scale, reference_scale)
        branches = _branches(b, device)[:count]
        output = model_prediction(
            denoiser,
            pipe,
            {k: torch.cat([v] * count) for k, v in batch.items()},
            torch.cat([noisy] * count),
            torch.cat([t] * count),
            reference=torch.cat([reference] * count),
            cached=cached,
            drop_reference=torch.cat([d for _, d in branches]),
            drop_audio=torch.cat([a for a, _ in branches]),
            speed_fps=source.fps,
        )
        parts = torch.split(output, b)
        guided = (
            parts[0]
            if count == 1
            else guided_prediction(
                parts[0], parts[1], parts[2] if count == 3 else None, audio_scale, reference_scale
            )
        )
        alpha_bar = pipe.scheduler.alphas_cumprod.to(device)[t].view(b, 1, 1, 1, 1)
        x0 = predicted_x0(
            str(pipe.scheduler.config["prediction_type"]),
            guided.float(),
            noisy.float(),
            alpha_bar.sqrt(),
            (1 - alpha_bar).sqrt(),
        )
        f = x0.shape[2]
        latents.append(rearrange(x0, "b c f h w -> (b f) c h w").cpu() / scaling)
        frames.append(rearrange(truth_batch["target"], "b c f h w -> (b f) h w c"))
        steps.append(t.cpu().repeat_interleave(f))
    return GeneratedPairs(torch.cat(latents), torch.cat(frames), torch.cat(steps))


def _branches(batch: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(drop_audio, drop_reference)`` of the guidance branches full, reference only, neither.

    The pipeline's branches (:meth:`emo.pipelines.emo_pipeline.EMOPipeline.__call__`);
    :func:`~emo.pipelines.conditioning.guidance_branch_count` says how many are used.
    """
    keep = torch.zeros(batch, dtype=torch.bool, device=device)
    drop = torch.ones(batch, dtype=torch.bool, device=device)
    return [(keep, keep), (drop, keep), (drop, drop)]
