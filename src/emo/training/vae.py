"""Train a small VAE (:class:`~emo.models.vae.AutoencoderKL`) on the frames of a prepared data set.

EMO diffuses in the latent space of a VAE. The full-size model borrows Stable
Diffusion's; a small model trained from nothing (the demo model, or a model for
another image domain) needs its own. :func:`train_vae` reads the ``frames`` of a
data set that ``emo prepare`` wrote, trains an autoencoder on them
(L1 reconstruction plus a small KL term), fits the ``scaling_factor`` that gives
the latents unit variance, and saves the VAE with ``save_pretrained``. Build a
pipeline around it (``EMOPipeline(vae=..., ...)``) and start stage 1 from that
pipeline folder (``model.init_from``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from emo.errors import ConfigError, InputError
from emo.training.devices import check_device, resolve_device

if TYPE_CHECKING:
    from emo.models.vae import AutoencoderKL
    from emo.training.decoder_pairs import GeneratedPairs

__all__ = [
    "DecoderSettings",
    "VAEResult",
    "VAESettings",
    "finetune_decoder",
    "load_prepared_frames",
    "train_vae",
]


@dataclass(frozen=True)
class VAESettings:
    """Shape of the VAE and how it is trained.

    Attributes
    ----------
    block_out_channels
        Channels per level; ``len - 1`` levels downsample by 2 (three levels: 4x).
    layers_per_block
        Resnets per encoder level (the decoder has one more).
    latent_channels
        Latent channels ``c``.
    norm_num_groups
        GroupNorm groups (must divide every entry of ``block_out_channels``).
    mid_block_attention
        Keep the mid-block self-attention (costly at large sizes, little use on small ones).
    max_steps
        Optimizer steps.
    batch_size
        Frames per step.
    learning_rate
        Peak AdamW learning rate; linear warm-up over ``warmup_steps``, then a linear
        decay to 5 % of it at ``max_steps``.
    warmup_steps
        Steps of the warm-up.
    kl_weight
        Weight of the KL term against the per-pixel L1 reconstruction loss.
    max_frames
        At most this many frames are read from the data set (evenly spread over its
        clips), to bound memory: ``max_frames * resolution**2 * 3`` bytes.
    seed
        Seed of the initial weights, the frame order and the latent samples.
    threads
        ``torch.set_num_threads`` for the run; ``None`` leaves torch's default.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (the local GPU when there is one). The frames
        are moved to the device once; on a GPU the latent samples come from a generator on
        that device, so a CUDA run is reproducible on CUDA, not bit-equal to a CPU run.
    """

    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 8
    mid_block_attention: bool = False
    max_steps: int = 800
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    kl_weight: float = 1e-6
    max_frames: int = 20_000
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_device("VAESettings.device", self.device)
        for name in ("layers_per_block", "latent_channels", "norm_num_groups", "max_steps",
                     "batch_size", "max_frames"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"VAESettings.{name} must be an int >= 1, got {value!r}")
        if not self.block_out_channels or min(self.block_out_channels) < 1:
            raise ConfigError(
                f"VAESettings.block_out_channels must list positive widths, got "
                f"{self.block_out_channels!r}"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"VAESettings.learning_rate must be > 0, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.kl_weight < 0:
            raise ConfigError("VAESettings.warmup_steps and kl_weight must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"VAESettings.threads must be >= 1, got {self.threads}")

    @property
    def downscale_factor(self) -> int:
        """Pixels per latent pixel: ``2 ** (len(block_out_channels) - 1)``."""
        return int(2 ** (len(self.block_out_channels) - 1))

    def vae_config(self, resolution: int, scaling_factor: float = 1.0) -> dict[str, Any]:
        """Keyword arguments of :class:`~emo.models.vae.AutoencoderKL` for these settings."""
        levels = len(self.block_out_channels)
        return {
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D",) * levels,
            "up_block_types": ("UpDecoderBlock2D",) * levels,
            "block_out_channels": tuple(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "latent_channels": self.latent_channels,
            "norm_num_groups": self.norm_num_groups,
            "sample_size": resolution,
            "scaling_factor": scaling_factor,
            "mid_block_add_attention": self.mid_block_attention,
        }


@dataclass
class VAEResult:
    """What :func:`train_vae` reports.

    Attributes
    ----------
    vae_dir
        The saved VAE folder (``AutoencoderKL.from_pretrained`` loads it).
    steps
        Optimizer steps done.
    frames
        Frames trained on.
    seconds
        Wall-clock time of the optimisation.
    reconstruction_l1
        Mean absolute error (pixels in ``[-1, 1]``) of the reconstructions, over up to
        256 frames of the data, after training.
    scaling_factor
        ``1 / std`` of the latents (written into the VAE config).
    losses
        ``(step, loss)`` every ``log_every`` steps.
    """

    vae_dir: Path
    steps: int
    frames: int
    seconds: float
    reconstruction_l1: float
    scaling_factor: float
    losses: list[tuple[int, float]] = field(default_factory=list)


def load_prepared_frames(root: str | os.PathLike[str], max_frames: int) -> torch.Tensor:
    """Read up to ``max_frames`` uint8 frames ``(n, s, s, 3)`` of a prepared data set.

    Frames are taken evenly from every clip (each clip gives its share), in clip order.

    Raises
    ------
    InputError
        If ``root`` is not a prepared data set or holds no frames.
    """
    from safetensors import safe_open

    from emo.training.data_format import read_clip_index, read_dataset_info

    folder = Path(root)
    read_dataset_info(folder)
    rows = read_clip_index(folder)
    if not rows:
        raise InputError(f"{os.fspath(folder)!r} holds no clips; run emo prepare on more videos")
    share = max(1, max_frames // len(rows))
    chunks: list[torch.Tensor] = []
    for row in rows:
        with safe_open(os.fspath(folder / "clips" / f"{row['id']}.safetensors"), "pt") as f:
            frames = f.get_tensor("frames")
        index = torch.linspace(0, frames.shape[0] - 1, min(share, frames.shape[0])).round().long()
        chunks.append(frames[index])
    return torch.cat(chunks)[:max_frames]


def _noise_generator(device: torch.device, seed: int, cpu: torch.Generator) -> torch.Generator:
    """The generator of latent noise: on the CPU the frame-order one (as before devices)."""
    if device.type == "cpu":
        return cpu
    return torch.Generator(device).manual_seed(seed)


def _lr_factor(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * max(0.05, 1.0 - step / total)

    return factor


def _pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> float ``(n, 3, h, w)`` in ``[-1, 1]``."""
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def _evaluate(vae: AutoencoderKL, frames: torch.Tensor) -> tuple[float, float]:
    """Reconstruction L1 and latent std over up to 256 evenly spread frames."""
    index = torch.linspace(0, frames.shape[0] - 1, min(256, frames.shape[0])).round().long()
    pixels = _pixels(frames[index.to(frames.device)])
    errors, latents = [], []
    for chunk in torch.split(pixels, 32):
        z = vae.encode(chunk).mode()
        latents.append(z)
        errors.append((vae.decode(z) - chunk).abs().mean(dim=(1, 2, 3)))
    return float(torch.cat(errors).mean()), float(torch.cat(latents).std())


def _optimise(
    params: list[torch.nn.Parameter],
    frames: torch.Tensor,
    cfg: VAESettings | DecoderSettings,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    gen: torch.Generator,
    log_every: int,
    log: Callable[[str], None] | None,
    label: str,
) -> tuple[list[tuple[int, float]], float]:
    """AdamW over random batches of ``frames``: the ``(step, loss)`` log and the seconds taken.

    ``loss_of`` maps a batch of pixels ``(n, 3, h, w)`` in ``[-1, 1]`` to the loss; the
    learning rate warms up linearly, then decays linearly to 5 %.
    """
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(cfg.warmup_steps, cfg.max_steps)
    )
    losses: list[tuple[int, float]] = []
    began = time.perf_counter()
    for step in range(cfg.max_steps):
        index = torch.randint(0, frames.shape[0], (cfg.batch_size,), generator=gen)
        loss = loss_of(_pixels(frames[index.to(frames.device)]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == cfg.max_steps:
            losses.append((step + 1, float(loss.detach())))
            if log is not None:
                elapsed = time.perf_counter() - began
                log(
                    f"{label} step {step + 1}/{cfg.max_steps} loss {losses[-1][1]:.4f} "
                    f"({elapsed:.0f} s)"
                )
    return losses, time.perf_counter() - began


def _recorded(
    out: Path,
    cfg: VAESettings | DecoderSettings,
    data_root: str | os.PathLike[str],
    frames: torch.Tensor,
    seconds: float,
    l1: float,
    scaling: float,
    losses: list[tuple[int, float]],
    **extra: Any,
) -> VAEResult:
    """Write ``out/training.json`` (settings, data, steps, time, error) and return the result."""
    record = {
        **extra,
        "settings": asdict(cfg),
        "data_root": os.fspath(data_root),
        "frames": int(frames.shape[0]),
        "steps": cfg.max_steps,
        "seconds": round(seconds, 1),
        "reconstruction_l1": round(l1, 5),
        "scaling_factor": scaling,
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return VAEResult(
        vae_dir=out,
        steps=cfg.max_steps,
        frames=int(frames.shape[0]),
        seconds=seconds,
        reconstruction_l1=l1,
        scaling_factor=scaling,
        losses=losses,
    )


def train_vae(
    data_root: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    settings: VAESettings | None = None,
    *,
    log_every: int = 50,
    log: Callable[[str], None] | None = None,
) -> VAEResult:
    """Train a VAE on the frames of a prepared data set and save it.

    Parameters
    ----------
    data_root
        A folder written by ``emo prepare``.
    output_dir
        Where the VAE is saved (``config.json``, ``model.safetensors``) with
        ``training.json`` (settings, steps, time, reconstruction error).
    settings
        Shape and optimisation; :class:`VAESettings` defaults when ``None``.
    log_every
        Record (and pass to ``log``) the loss every this many steps.
    log
        Called with a one-line progress message every ``log_every`` steps.

    Returns
    -------
    VAEResult
        The folder and the figures of the run.

    Raises
    ------
    InputError
        If the data set cannot be read or its frames are not a multiple of the VAE's
        downscale factor.
    """
    from emo.models.vae import AutoencoderKL

    cfg = settings or VAESettings()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, "VAE training")
    frames = load_prepared_frames(data_root, cfg.max_frames)
    resolution = int(frames.shape[1])
    if resolution % cfg.downscale_factor:
        raise InputError(
            f"prepared frames are {resolution} px, not a multiple of the VAE's downscale factor "
            f"{cfg.downscale_factor}; prepare at another resolution or use fewer levels"
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    vae = AutoencoderKL(**cfg.vae_config(resolution)).train().to(device)
    frames = frames.to(device)
    noise = _noise_generator(device, cfg.seed, gen)

    def vae_loss(pixels: torch.Tensor) -> torch.Tensor:
        posterior = vae.encode(pixels)
        reconstruction = vae.decode(posterior.sample(generator=noise))
        kl: torch.Tensor = posterior.kl().mean()
        return (reconstruction - pixels).abs().mean() + cfg.kl_weight * kl

    losses, seconds = _optimise(
        list(vae.parameters()), frames, cfg, vae_loss, gen, log_every, log, "vae"
    )
    vae.eval()
    l1, std = _evaluate(vae, frames)
    scaling = 1.0 / max(std, 1e-6)
    final = AutoencoderKL(**cfg.vae_config(resolution, scaling_factor=scaling))
    final.load_state_dict({k: v.cpu() for k, v in vae.state_dict().items()})
    out = Path(output_dir)
    final.save_pretrained(out)
    return _recorded(
        out, cfg, data_root, frames, seconds, l1, scaling, losses, resolution=resolution
    )


@dataclass(frozen=True)
class DecoderSettings:
    """How :func:`finetune_decoder` trains a VAE's decoder with its encoder frozen.

    Attributes
    ----------
    max_steps
        Optimizer steps.
    batch_size
        Frames per step.
    learning_rate
        Peak AdamW learning rate (linear warm-up, then linear decay to 5 %).
    warmup_steps
        Steps of the warm-up.
    edge_weight
        Weight of an L1 loss on the horizontal and vertical pixel differences, next to
        the per-pixel L1: plain L1 settles on the blurred average of what the latent
        leaves open, edges pull eyes, brows and lips back into focus.
    latent_noise
        Standard deviation of Gaussian noise added to the encoder's latents, in units of
        the scaled latents the diffusion model sees: a stand-in for generation errors.
    generated_share
        With ``generated`` pairs given to :func:`finetune_decoder`, the fraction of each
        batch drawn from them (the rest: encoded frames).
    max_frames
        At most this many frames are read (see :func:`load_prepared_frames`).
    seed
        Seed of the frame order.
    threads
        ``torch.set_num_threads`` for the run; ``None`` leaves torch's default.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``, as :attr:`VAESettings.device`.
    """

    max_steps: int = 1500
    batch_size: int = 8
    learning_rate: float = 5e-4
    warmup_steps: int = 50
    edge_weight: float = 1.0
    latent_noise: float = 0.0
    generated_share: float = 0.5
    max_frames: int = 20_000
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_device("DecoderSettings.device", self.device)
        for name in ("max_steps", "batch_size", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DecoderSettings.{name} must be an int >= 1, got {value!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(
                f"DecoderSettings.learning_rate must be > 0, got {self.learning_rate}"
            )
        for name in ("edge_weight", "latent_noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"DecoderSettings.{name} must be a number >= 0, got {value!r}")
        if self.warmup_steps < 0:
            raise ConfigError("DecoderSettings.warmup_steps must be >= 0")
        share = self.generated_share
        if isinstance(share, bool) or not (math.isfinite(share) and 0 <= share <= 1):
            raise ConfigError(
                f"DecoderSettings.generated_share must be a number in [0, 1], got {share!r}"
            )


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical neighbour differences of ``(n, c, h, w)`` images."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def finetune_decoder(
    data_root: str | os.PathLike[str],
    vae_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    settings: DecoderSettings | None = None,
    *,
    generated: GeneratedPairs | None = None,
    log_every: int = 50,
    log: Callable[[str], None] | None = None,
) -> VAEResult:
    """Train a saved VAE's decoder further, its encoder (and so its latents) unchanged.

    The decoder learns to decode the latent *mode* -- what the diffusion model is
    trained on (cached latents) and generates -- with a per-pixel L1 plus
    ``edge_weight`` times an L1 on pixel differences. The encoder, ``quant_conv`` and
    the scaling factor stay as they are, so a diffusion model trained on the old
    latents (and latents already cached by ``emo prepare``) works with the new decoder
    unchanged; only its pictures get sharper.

    Parameters
    ----------
    data_root
        A folder written by ``emo prepare``.
    vae_dir
        The VAE to start from (``AutoencoderKL.from_pretrained``).
    output_dir
        Where the VAE with the new decoder is saved, with ``training.json``.
    settings
        :class:`DecoderSettings`; the defaults when ``None``.
    generated
        Latents a diffusion model predicted, with the true frames
        (:func:`emo.training.decoder_pairs.generated_latent_pairs`): a share
        (:attr:`DecoderSettings.generated_share`) of every batch decodes them, so the
        decoder learns what to draw from the model's latents, errors included.
    log_every, log
        Progress lines, as in :func:`train_vae`.

    Returns
    -------
    VAEResult
        The folder and the figures of the run (``scaling_factor``: the unchanged one).

    Raises
    ------
    InputError
        If the data set or the VAE cannot be read, or their sizes do not fit.
    """
    from emo.models.vae import AutoencoderKL

    cfg = settings or DecoderSettings()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, "VAE training")
    frames = load_prepared_frames(data_root, cfg.max_frames)
    vae = AutoencoderKL.from_pretrained(vae_dir)
    factor = 2 ** (len(vae.config["block_out_channels"]) - 1)
    if frames.shape[1] % factor:
        raise InputError(
            f"prepared frames are {frames.shape[1]} px, not a multiple of the VAE's downscale "
            f"factor {factor}"
        )
    decoder_parts = [vae.decoder] + ([vae.post_quant_conv] if vae.post_quant_conv else [])
    vae.requires_grad_(False)
    params = [p for part in decoder_parts for p in part.parameters()]
    for p in params:
        p.requires_grad_(True)
    vae.train().to(device)
    frames = frames.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    noise = _noise_generator(device, cfg.seed, gen)

    extra = 0
    if generated is not None and len(generated):
        if generated.frames.shape[1:] != frames.shape[1:]:
            raise InputError(
                f"generated pairs' frames are {tuple(generated.frames.shape[1:])}, the data's "
                f"{tuple(frames.shape[1:])}; make the pairs from the same data set"
            )
        extra = round(cfg.batch_size * cfg.generated_share)

    def decoded_error(latent: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        reconstruction = vae.decode(latent)
        loss = (reconstruction - pixels).abs().mean()
        if cfg.edge_weight > 0:
            for got, want in zip(_edges(reconstruction), _edges(pixels), strict=True):
                loss = loss + cfg.edge_weight * (got - want).abs().mean()
        return loss

    def encoded_error(own: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            latent = vae.encode(own).mode()
            if cfg.latent_noise > 0:
                scale = cfg.latent_noise / float(vae.config["scaling_factor"])
                latent = latent + scale * torch.randn(
                    latent.shape, generator=noise, device=latent.device
                )
        return decoded_error(latent, own) * (own.shape[0] / cfg.batch_size)

    def decoder_loss(pixels: torch.Tensor) -> torch.Tensor:
        own = pixels[: pixels.shape[0] - extra]
        loss = pixels.new_zeros(())
        if own.shape[0]:
            loss = encoded_error(own)
        if extra and generated is not None:
            pick = torch.randint(0, len(generated), (extra,), generator=gen)
            drawn = generated.latents[pick].to(device)
            truth = _pixels(generated.frames[pick].to(device))
            loss = loss + decoded_error(drawn, truth) * (extra / pixels.shape[0])
        return loss

    losses, seconds = _optimise(params, frames, cfg, decoder_loss, gen, log_every, log, "decoder")
    vae.eval().requires_grad_(False)
    l1, _ = _evaluate(vae, frames)
    out = Path(output_dir)
    vae.to("cpu").save_pretrained(out)
    scaling = float(vae.config["scaling_factor"])
    return _recorded(
        out,
        cfg,
        data_root,
        frames,
        seconds,
        l1,
        scaling,
        losses,
        finetuned_decoder_of=os.fspath(vae_dir),
        generated_pairs=len(generated) if generated is not None else 0,
    )
