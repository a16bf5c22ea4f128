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


def _face_embedder(root: Path) -> Any:
    """insightface's models of a Hallo folder run by emo, or ``None`` when the folder has none."""
    models = root / "face_analysis" / "models"
    if not models.is_dir():
        return None
    from emo.face.insightface import InsightFaceEmbedder

    return InsightFaceEmbedder.from_hallo_folder(root)


def _vocal_separator(root: Path) -> Any:
    """The MDX-Net vocal separator of a Hallo folder, or ``None`` when the folder has none."""
    from emo.audio.vocals.separator import find_separator

    return find_separator(root)


def _settings_beside(root: Path) -> HalloSettings:
    """Hallo's settings from a ``hallo_config.json`` beside the folder, else Hallo's defaults."""
    import json

    for folder in (root, root.parent):
        path = folder / "hallo_config.json"
        if path.is_file():
            try:
                return HalloSettings.from_hallo_config(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"cannot read Hallo's settings {os.fspath(path)!r}: {exc}"
                ) from exc
    return HalloSettings()


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
    face_embedder
        Gives the portrait's face embedding (``embed(image uint8 (H, W, 3)) -> (E,)``;
        Hallo: insightface's models), or ``None`` (a zero embedding, with a warning).
    vocal_separator
        Separates the vocals of a song (``sample_rate`` and ``separate(waveform, rate)``;
        Hallo: MDX-Net Kim_Vocal_2), or ``None``.
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
        face_embedder: Any = None,
        vocal_separator: Any = None,
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
        enc = self.audio_encoder
        proj = audio_projection.config
        if enc is not None and (
            int(enc.feature_dim) != int(proj["feature_dim"])
            or int(enc.num_layers) != int(proj["num_layers"])
        ):
            raise ConfigError(
                f"HalloPipeline: the audio encoder gives {enc.num_layers} layers x "
                f"{enc.feature_dim} features but the audio projection takes "
                f"{proj['num_layers']} x {proj['feature_dim']}; use the encoder the model was "
                "trained with (Hallo: wav2vec2-base-960h, transformer layers 1-12)"
            )
        self.face_embedder = face_embedder
        self.vocal_separator = vocal_separator
        self.name_or_path: str | None = None
        self._progress_config: dict[str, Any] = {}

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

            pipe = load_pipeline(cls, directory, device=device, dtype=dtype, overrides=overrides)
            pipe.name_or_path = os.fspath(directory)
            return pipe
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
            "face_embedder": overrides.pop("face_embedder", None) or _face_embedder(root),
            "vocal_separator": overrides.pop("vocal_separator", None) or _vocal_separator(root),
        }
        if "settings" not in overrides:
            overrides["settings"] = _settings_beside(root)
        unknown = sorted(set(overrides) - {"settings", *kwargs})
        if unknown:
            raise ConfigError(f"HalloPipeline: unknown components {unknown}")
        kwargs.update({k: v for k, v in overrides.items() if k != "settings"})
        pipe = cls(**kwargs, settings=overrides.get("settings"))
        pipe.name_or_path = os.fspath(root)
        return pipe

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options of the tqdm progress bar (``disable=True`` silences it)."""
        self._progress_config = dict(kwargs)

    # -- generation ----------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        audio: Any,
        *,
        output_path: str | os.PathLike[str] | None = None,
        generator: torch.Generator | None = None,
        audio_rate: int | None = None,
        size: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        face_embedding: torch.Tensor | None = None,
        masks: Any = None,
        landmarks: Any = None,
        vocal_separation: bool | None = None,
        writer: Any = None,
        watermark: Any = True,
        content_credentials: Any = None,
        output_type: str | None = None,
    ) -> Any:
        """Make the video of ``image`` saying or singing ``audio``, Hallo's way.

        Parameters
        ----------
        image
            The portrait (path, array or PIL image). A non-square one is cropped to its
            largest centred square first (Hallo would stretch it).
        audio
            A path of any audio or video format, or an array with ``audio_rate``. Any
            length: clips are generated, written and forgotten one at a time.
        output_path
            Write the video there (MP4, WebM, GIF, PNG frames), with the source audio
            muxed, the invisible mark and the label; the file appears only when complete.
        generator
            The noise source (default: ``torch.manual_seed(settings.seed)``, Hallo's 42):
            same inputs and seed, same video.
        audio_rate
            Rate of an array ``audio``.
        size, num_inference_steps, guidance_scale
            Override the settings (size in pixels, square).
        face_embedding, masks, landmarks
            Give the face embedding ``(E,)``, the :class:`~emo.face_masks.hallo.HalloMasks`
            or the portrait's landmarks (MediaPipe's 478 points reproduce Hallo exactly)
            instead of computing them (see :mod:`emo.pipelines.hallo_inputs`).
        vocal_separation
            Separate the vocals before encoding the audio: ``None`` (default) when the
            pipeline has a separator, ``False`` never.
        writer, watermark, content_credentials
            As in :meth:`EMOPipeline.__call__ <emo.pipelines.emo_pipeline.EMOPipeline.__call__>`.
        output_type
            ``"pt"`` to also return the frames (uint8 ``(f, H, W, 3)``); by default the frames
            are kept only when there is no ``output_path``.

        Returns
        -------
        EMOPipelineOutput
            The frames (or ``None``), fps, frame count, the written path and the portrait.
        """
        from emo.pipelines.hallo_output import write_hallo_video

        return write_hallo_video(
            self,
            image,
            audio,
            output_path=output_path,
            generator=generator,
            audio_rate=audio_rate,
            size=size,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            face_embedding=face_embedding,
            masks=masks,
            landmarks=landmarks,
            vocal_separation=vocal_separation,
            writer=writer,
            watermark=watermark,
            content_credentials=content_credentials,
            output_type=output_type,
        )

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
