"""HalloPipeline: Hallo's released model on emo's networks, loop and I/O.

``HalloPipeline.from_pretrained("pretrained_models/")`` reads Hallo's own folder
(``hallo/net.pth`` and the parts beside it, see :mod:`emo.loaders.hallo`) or a folder
this class saved (safetensors, no pickle). It generates Hallo's video exactly (see
``docs/guide/hallo.md``) through :class:`~emo.pipelines.hallo_sampler.HalloSampler`,
from precomputed conditions (:meth:`HalloPipeline.generate_from_conditions`, the
researchers' entry) or from a portrait and an audio file (:meth:`HalloPipeline.__call__`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from emo import plugins
from emo.errors import ConfigError
from emo.pipelines.hallo_sampler import HalloClip, HalloConditions, HalloSampler, StepCallback
from emo.pipelines.hallo_settings import HALLO_SCHEDULER_CONFIG, HalloSettings

__all__ = ["HalloPipeline"]


def _hallo_scheduler() -> Any:
    from emo.schedulers.ddim import DDIMScheduler

    return DDIMScheduler(**HALLO_SCHEDULER_CONFIG)


class HalloPipeline:
    """Hallo's networks (emo modules) with its denoising loop and emo's I/O.

    Parameters
    ----------
    vae
        :class:`~emo.models.vae.AutoencoderKL` (Hallo: ``sd-vae-ft-mse``).
    reference_net, backbone, face_locator, face_projection, audio_projection
        The networks as :func:`emo.loaders.hallo.load_hallo_networks` builds them.
    scheduler
        A scheduler plugin, name or instance (default: Hallo's DDIM configuration).
    audio_encoder
        The wav2vec2 audio encoder in Hallo's mode, or ``None`` (then only
        :meth:`generate_from_conditions` works).
    settings
        Generation defaults (:class:`~emo.pipelines.hallo_settings.HalloSettings`).
    """

    #: Network components, saved as ``config.json`` + ``model.safetensors`` each.
    model_components = (
        "vae",
        "reference_net",
        "backbone",
        "face_locator",
        "face_projection",
        "audio_projection",
    )
    #: Plugin components and their kinds.
    plugin_components = MappingProxyType(
        {"audio_encoder": "audio_encoder", "scheduler": "scheduler"}
    )
    #: Components a saved folder may lack.
    optional_components = ("audio_encoder",)
    settings_class = HalloSettings

    def __init__(
        self,
        vae: Any,
        reference_net: Any,
        backbone: Any,
        face_locator: Any,
        face_projection: Any,
        audio_projection: Any,
        scheduler: Any = None,
        audio_encoder: Any = None,
        *,
        settings: HalloSettings | None = None,
    ) -> None:
        for name, model in (
            ("vae", vae),
            ("reference_net", reference_net),
            ("backbone", backbone),
            ("face_locator", face_locator),
            ("face_projection", face_projection),
            ("audio_projection", audio_projection),
        ):
            if not isinstance(model, torch.nn.Module):
                raise ConfigError(
                    f"HalloPipeline: {name} must be a torch module, got {type(model).__name__}"
                )
        config = backbone.config
        if config.get("audio_attention_type") != "masked" or not config.get("text_attention"):
            raise ConfigError(
                "HalloPipeline: the backbone is not configured as Hallo's (it needs "
                "audio_attention_type='masked' and text_attention=True); load Hallo's folder "
                "with HalloPipeline.from_pretrained"
            )
        self.vae = vae
        self.reference_net = reference_net
        self.backbone = backbone
        self.face_locator = face_locator
        self.face_projection = face_projection
        self.audio_projection = audio_projection
        self.scheduler = plugins.create(
            "scheduler", _hallo_scheduler() if scheduler is None else scheduler
        )
        self.audio_encoder = (
            None if audio_encoder is None else plugins.create("audio_encoder", audio_encoder)
        )
        self.settings = settings or HalloSettings()

    # -- components ------------------------------------------------------------------
    @property
    def components(self) -> dict[str, Any]:
        """Every component by name (build a sibling pipeline with ``HalloPipeline(**c)``)."""
        return {
            name: getattr(self, name) for name in (*self.model_components, *self.plugin_components)
        }

    @property
    def sampler(self) -> HalloSampler:
        """The denoising loop over this pipeline's networks."""
        return HalloSampler(
            self.vae,
            self.reference_net,
            self.backbone,
            self.face_locator,
            self.face_projection,
            self.audio_projection,
            self.scheduler,
        )

    @property
    def device(self) -> torch.device:
        """Where the Backbone's weights are."""
        return self.backbone.conv_in.weight.device  # type: ignore[no-any-return]

    @property
    def dtype(self) -> torch.dtype:
        """The Backbone's dtype."""
        return self.backbone.conv_in.weight.dtype  # type: ignore[no-any-return]

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> HalloPipeline:
        """Move (and cast) every network in place; returns ``self``."""
        for name in self.model_components:
            getattr(self, name).to(device=device, dtype=dtype)
        mover = getattr(self.audio_encoder, "to", None)
        if device is not None and callable(mover):
            mover(device=device)
        return self

    # -- persistence ------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Save as an ordinary emo folder (``model_index.json``, safetensors, no pickle)."""
        from emo.pipelines.persistence import save_pipeline

        return save_pipeline(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        motion_num_attention_heads: int | None = None,
        **overrides: Any,
    ) -> HalloPipeline:
        """Load Hallo's ``pretrained_models/`` folder or a folder saved by :meth:`save_pretrained`.

        Parameters
        ----------
        directory
            Hallo's ``pretrained_models`` (``hallo/net.pth``, ``stable-diffusion-v1-5/unet``,
            ``sd-vae-ft-mse``, ``wav2vec/wav2vec2-base-960h``, optionally
            ``audio_separator`` and ``face_analysis``), or a saved emo folder.
        device, dtype
            Where and in which precision the networks go (default: CPU, float32).
        motion_num_attention_heads
            Hallo layout only: the motion modules' heads (default: read from Hallo's
            configuration beside the folder, else 8).
        **overrides
            Replace components (``scheduler=...``, ``audio_encoder=...``) or
            ``settings=HalloSettings(...)``.
        """
        from emo.loaders.hallo import find_hallo_root

        root = find_hallo_root(directory)
        if root is None:
            from emo.pipelines.persistence import load_pipeline

            return load_pipeline(cls, directory, device=device, dtype=dtype, overrides=overrides)
        return cls._from_hallo_folder(
            root,
            device=device or "cpu",
            dtype=dtype or torch.float32,
            motion_num_attention_heads=motion_num_attention_heads,
            overrides=overrides,
        )

    @classmethod
    def _from_hallo_folder(
        cls,
        root: Path,
        *,
        device: str | torch.device,
        dtype: torch.dtype,
        motion_num_attention_heads: int | None,
        overrides: dict[str, Any],
    ) -> HalloPipeline:
        from emo.loaders.hallo import hallo_audio_encoder, load_hallo_networks
        from emo.models.vae import AutoencoderKL

        nets = load_hallo_networks(
            root, dtype=dtype, device=device, motion_num_attention_heads=motion_num_attention_heads
        )
        vae = AutoencoderKL.from_diffusers(root / "sd-vae-ft-mse", dtype=dtype, device=device)
        kwargs: dict[str, Any] = {
            "vae": vae.eval(),
            **nets.modules(),
            "scheduler": overrides.pop("scheduler", None),
            "audio_encoder": overrides.pop("audio_encoder", None) or hallo_audio_encoder(root),
        }
        unknown = sorted(set(overrides) - {"settings", *kwargs})
        if unknown:
            raise ConfigError(f"HalloPipeline: unknown components {unknown}")
        kwargs.update({k: v for k, v in overrides.items() if k != "settings"})
        return cls(**kwargs, settings=overrides.get("settings"))

    # -- generation ----------------------------------------------------------------------
    def generate_from_conditions(
        self,
        conditions: HalloConditions,
        *,
        generator: torch.Generator | None = None,
        initial_latents: Sequence[torch.Tensor] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        frames_per_clip: int | None = None,
        motion_frames: int | None = None,
        on_step: StepCallback | None = None,
    ) -> Iterator[HalloClip]:
        """Generate clip after clip from precomputed conditions (see :class:`HalloSampler`).

        Unset arguments take the pipeline's :attr:`settings`; without ``generator`` and
        ``initial_latents`` the noise comes from ``torch.manual_seed(settings.seed)``
        (Hallo's fixed seed 42), so the same call gives the same video.
        """
        settings = self.settings
        if generator is None and initial_latents is None:
            generator = torch.Generator().manual_seed(settings.seed)
        with torch.no_grad():
            yield from self.sampler.generate(
                conditions,
                num_frames=frames_per_clip or settings.frames_per_clip,
                num_motion_frames=settings.motion_frames
                if motion_frames is None
                else motion_frames,
                num_inference_steps=num_inference_steps or settings.num_inference_steps,
                guidance_scale=settings.guidance_scale
                if guidance_scale is None
                else guidance_scale,
                generator=generator,
                initial_latents=initial_latents,
                on_step=on_step,
            )
