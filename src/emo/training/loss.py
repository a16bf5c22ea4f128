"""The diffusion loss of one batch, and a fixed-noise evaluation loss to compare models."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from einops import rearrange

from emo.errors import ConfigError
from emo.training.mouth import mouth_weights

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.dataset import ClipDataset

__all__ = [
    "batch_latents",
    "change_weights",
    "diffusion_loss",
    "evaluation_loss",
    "model_prediction",
]


def batch_latents(pipe: EMOPipeline, values: torch.Tensor, cached: bool) -> torch.Tensor:
    """``(b, c, f, h, w)`` latents from cached latents, or from uint8 frames ``(b, 3, f, H, W)``.

    Frames are encoded with the pipeline's (frozen) VAE: the mode of the latent
    distribution times the scaling factor, as ``emo prepare`` caches them.
    """
    device = pipe.device
    if cached:
        return values.to(device, torch.float32)
    batch = values.shape[0]
    pixels = rearrange(values, "b c f h w -> (b f) c h w").to(device, torch.float32)
    pixels = pixels / 127.5 - 1.0
    with torch.no_grad():
        latent = pipe.vae.encode(pixels.to(pipe.vae.dtype)).mode()
        latent = latent * float(pipe.vae.config["scaling_factor"])
    return rearrange(latent.float(), "(b f) c h w -> b c f h w", b=batch)


def diffusion_loss(
    model: Any,
    pipe: EMOPipeline,
    batch: dict[str, torch.Tensor],
    *,
    cached: bool,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    drop_reference: torch.Tensor | None = None,
    drop_audio: torch.Tensor | None = None,
    autocast_dtype: torch.dtype | None = None,
    speed_fps: float | None = None,
    motion_noise: torch.Tensor | None = None,
    change_weight: float = 0.0,
    mouth_weight: float = 0.0,
    frame_size: int | None = None,
) -> torch.Tensor:
    """Mean squared error between the model's output and the scheduler's training target.

    Parameters
    ----------
    model
        The :class:`~emo.denoiser.EMODenoiser` (or its DDP/FSDP wrapper).
    pipe
        Supplies the VAE (for uncached frames) and the scheduler (``add_noise``,
        ``training_target``: epsilon or v).
    batch
        From :meth:`emo.training.dataset.ClipDataset.batch`.
    cached
        Whether ``batch`` holds latents rather than frames.
    noise
        ``(b, c, f, h, w)`` standard normal noise.
    timesteps
        ``(b,)`` training timesteps.
    drop_reference, drop_audio
        bool ``(b,)`` condition dropout.
    autocast_dtype
        ``torch.bfloat16`` / ``torch.float16`` autocast, or ``None``.
    speed_fps
        Frame rate of ``batch["speed"]`` (the data's fps: ``emo prepare`` writes degrees
        per training frame); the speed layers rescale it to their reference rate.
        ``None``: already at that rate.
    motion_noise
        ``(b, c, n, h, w)`` noise added to the motion-frame latents (augmentation), or
        ``None``.
    change_weight
        Extra weight of the elements that differ from the reference
        (:class:`~emo.training.settings.LossSettings`); 0: the plain mean.
    mouth_weight
        Extra weight of the elements inside the target frames' mouth boxes
        (``batch["mouth_boxes"]``, :func:`emo.training.mouth.mouth_weights`); 0: none.
    frame_size
        Side of the prepared frames in pixels, which the mouth boxes are measured on
        (default: the side of ``batch["target"]`` frames; needed with cached latents).
    """
    target_latents = batch_latents(pipe, batch["target"], cached)
    reference = batch_latents(pipe, batch["reference"][:, :, None], cached)[:, :, 0]
    noise = noise.to(pipe.device)
    timesteps = timesteps.to(pipe.device)
    target = pipe.scheduler.training_target(target_latents, noise, timesteps)
    noisy = pipe.scheduler.add_noise(target_latents, noise, timesteps)
    prediction = model_prediction(
        model,
        pipe,
        batch,
        noisy,
        timesteps,
        reference=reference,
        cached=cached,
        drop_reference=drop_reference,
        drop_audio=drop_audio,
        autocast_dtype=autocast_dtype,
        speed_fps=speed_fps,
        motion_noise=motion_noise,
    )
    if change_weight <= 0.0 and mouth_weight <= 0.0:
        return F.mse_loss(prediction.float(), target.float())
    weight = torch.ones_like(target_latents[:, :1], dtype=torch.float32)
    if change_weight > 0.0:
        weight = change_weights(target_latents, reference, change_weight)
    if mouth_weight > 0.0:
        if "mouth_boxes" not in batch:
            raise ConfigError(
                "loss.mouth_weight needs mouth boxes in the batch (SampleSpec(mouth_boxes=True))"
            )
        size = frame_size if frame_size is not None else int(batch["target"].shape[-1])
        latent_size = (int(weight.shape[-2]), int(weight.shape[-1]))
        extra = mouth_weights(batch["mouth_boxes"], latent_size, size, mouth_weight)
        weight = weight + (extra.to(weight.device) - 1.0)
    error = (prediction.float() - target.float()).square()
    weighted: torch.Tensor = (error * weight).mean() / weight.mean()
    return weighted


def model_prediction(
    model: Any,
    pipe: EMOPipeline,
    batch: dict[str, torch.Tensor],
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    *,
    reference: torch.Tensor,
    cached: bool,
    drop_reference: torch.Tensor | None = None,
    drop_audio: torch.Tensor | None = None,
    autocast_dtype: torch.dtype | None = None,
    speed_fps: float | None = None,
    motion_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """The model's output for noisy target latents under a batch's conditions.

    What :func:`diffusion_loss` compares with the training target, and what
    :func:`emo.training.decoder_pairs.generated_latent_pairs` turns into clean latents.

    Parameters
    ----------
    model, pipe, batch, cached, drop_reference, drop_audio, autocast_dtype, speed_fps, motion_noise
        As in :func:`diffusion_loss`.
    noisy
        ``(b, c, f, h, w)`` noisy target latents, on the pipeline's device.
    timesteps
        ``(b,)`` their timesteps, on the pipeline's device.
    reference
        ``(b, c, h, w)`` reference latents (:func:`batch_latents` of ``batch["reference"]``).

    Returns
    -------
    torch.Tensor
        ``(b, c, f, h, w)``: epsilon, v or x0, as the scheduler's ``prediction_type``.
    """
    device = pipe.device
    kwargs: dict[str, Any] = {
        "reference_latent": reference,
        "face_mask": batch["mask"].to(device),
        "drop_reference": drop_reference,
    }
    if "audio" in batch:
        kwargs["audio_window"] = batch["audio"].to(device)
        kwargs["drop_audio"] = drop_audio
    if "motion" in batch:
        motion = batch_latents(pipe, batch["motion"], cached)
        if motion_noise is not None:
            motion = motion + motion_noise.to(device, motion.dtype)
        kwargs["motion_latents"] = motion
        kwargs["drop_motion"] = batch["zero_motion"].to(device)
    if "speed" in batch:
        kwargs["speed"] = batch["speed"].to(device)
        kwargs["speed_fps"] = speed_fps
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with autocast:
        prediction: torch.Tensor = model(noisy, timesteps, **kwargs)
    return prediction


def change_weights(
    target_latents: torch.Tensor, reference: torch.Tensor, change_weight: float
) -> torch.Tensor:
    """Per-element loss weights ``(b, 1, f, h, w)``: ``1 + change_weight * d / mean(d)``.

    Parameters
    ----------
    target_latents
        ``(b, c, f, h, w)`` clean target latents.
    reference
        ``(b, c, h, w)`` reference latents.
    change_weight
        How much more a latent pixel weighs where it differs from the reference by the
        sample's mean difference.
    """
    change = (target_latents.float() - reference.float()[:, :, None]).abs().mean(1, keepdim=True)
    scale = change.mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
    return 1.0 + change_weight * change / scale


@torch.no_grad()
def evaluation_loss(
    model: Any,
    pipe: EMOPipeline,
    dataset: ClipDataset,
    *,
    samples: int = 8,
    timesteps_per_sample: int = 4,
    seed: int = 0,
) -> float:
    """The loss on fixed samples, noise and evenly spread timesteps (no dropout).

    Deterministic for a given model and data: compare it before and after training.

    Parameters
    ----------
    model
        The :class:`~emo.denoiser.EMODenoiser`.
    pipe
        The pipeline owning the networks.
    dataset
        The data (its first ``samples`` clips, epoch 0).
    samples
        Clips used.
    timesteps_per_sample
        Timesteps per clip, spread over the training range.
    seed
        Seed of the noise.
    """
    count = min(samples, len(dataset))
    batch = dataset.batch(list(range(count)), epoch=0)
    latents = batch_latents(pipe, batch["target"], dataset.use_latents)
    total = int(pipe.scheduler.config["num_train_timesteps"])
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for k in range(timesteps_per_sample):
        t = int((k + 0.5) * total / timesteps_per_sample)
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.full((count,), t, dtype=torch.long)
        loss = diffusion_loss(
            model,
            pipe,
            batch,
            cached=dataset.use_latents,
            noise=noise,
            timesteps=timesteps,
            speed_fps=dataset.fps,
        )
        losses.append(float(loss))
    return sum(losses) / len(losses)
