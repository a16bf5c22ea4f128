"""``EMOPipeline``: one portrait + one audio track -> a talking or singing video of any length."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from emo import plugins
from emo.denoiser import drop_rows
from emo.errors import ConfigError, InputError
from emo.limits import check_frame_size
from emo.pipelines.components import MODEL_COMPONENTS, PLUGIN_COMPONENTS
from emo.pipelines.conditioning import (
    ClipAudioFeatures,
    clip_speed_window,
    first_clip_motion_features,
    guidance_branch_count,
    guided_prediction,
    head_speed_track,
    next_motion_latents,
    prepare_portrait,
)
from emo.pipelines.input_checks import check_generation_inputs
from emo.pipelines.mux_audio import audio_for_mux
from emo.pipelines.numerics import NonFiniteWatch, check_decoded
from emo.pipelines.output_size import NATIVE, resize_frames, written_frame_size
from emo.pipelines.overlap import consume_clips, resolve_overlap
from emo.pipelines.settings import GUIDANCE_SEQUENTIAL_DEVICES, PipelineSettings
from emo.schedulers.base import random_noise, scheduler_step

if TYPE_CHECKING:
    from emo.denoiser import EMODenoiser
    from emo.jobs.results import BatchSummary
    from emo.models.audio_projection import AudioProjection
    from emo.models.backbone import Backbone
    from emo.models.face_locator import FaceLocator
    from emo.models.reference_net import ReferenceNet
    from emo.models.vae import AutoencoderKL

__all__ = ["MODEL_COMPONENTS", "PLUGIN_COMPONENTS", "EMOPipeline", "EMOPipelineOutput"]

OutputType = Literal["pt", "np", "pil", "latent"]
#: Seconds of audio encoded at a time (plus context on both sides): bounds feature memory.
_AUDIO_BLOCK_SECONDS = 10.0
StepCallback = Callable[["EMOPipeline", int, Any, dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class EMOPipelineOutput:
    """What :meth:`EMOPipeline.__call__` returns.

    Attributes
    ----------
    frames
        The video, by ``output_type``: ``"pt"`` float32 ``(f, 3, h, w)`` in ``[0, 1]``;
        ``"np"`` float32 ``(f, h, w, 3)`` in ``[0, 1]``; ``"pil"`` a list of PIL images;
        ``"latent"`` the latents ``(1, c, f, h/8, w/8)``. ``None`` when the video was only
        streamed to ``output_path``.
    fps
        Frame rate.
    num_frames
        Frames in the video: ``ceil(audio duration * fps)``.
    path
        The written video file, if ``output_path`` was given.
    portrait
        The cropped, resized reference image, uint8 ``(h, w, 3)``.
    """

    frames: Any
    fps: float
    num_frames: int
    path: Path | None
    portrait: np.ndarray


def _is_model(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module)


class EMOPipeline:
    """Generate a video of a portrait talking or singing to an audio track (EMO).

    Parameters
    ----------
    vae
        :class:`emo.models.vae.AutoencoderKL`: images <-> latents.
    reference_net
        :class:`emo.models.reference_net.ReferenceNet`: identity (reference) and motion-frame features.
    backbone
        :class:`emo.models.backbone.Backbone`: the denoising video UNet.
    face_locator
        :class:`emo.models.face_locator.FaceLocator`: face-region mask -> latent features.
    audio_encoder
        An ``audio_encoder`` plugin: name (``"wav2vec2"``, ``"mel"``...), class or instance.
    audio_projection
        :class:`emo.models.audio_projection.AudioProjection`: per-frame features -> audio tokens.
    scheduler
        A ``scheduler`` plugin: name (``"ddim"``...), class, or instance (a diffusers
        scheduler instance works too).
    face_mask
        A ``face_mask`` plugin: ``"auto"`` (needs ``emo[face]``), ``"box"``, ``"full"``, a class or
        an instance. ``None`` (default): ``"auto"`` when a face detector is installed, else
        ``"full"`` with a warning (:func:`~emo.face_masks.default.default_face_mask`).
    settings
        Generation defaults (size, fps, clip length, steps, guidance...).

    Examples
    --------
    >>> pipe = EMOPipeline.from_preset("tiny", face_mask="full")  # doctest: +SKIP
    >>> out = pipe("portrait.png", "speech.wav", num_inference_steps=4, output_path="out.mp4")  # doctest: +SKIP
    """

    #: The folder or bundled model name it was loaded from (``None`` when built in code);
    #: C2PA manifests record it as the model's name.
    name_or_path: str | None = None

    def __init__(
        self,
        vae: Any,
        reference_net: Any,
        backbone: Any,
        face_locator: Any,
        audio_encoder: Any,
        audio_projection: Any,
        scheduler: Any = "ddim",
        face_mask: Any = None,
        *,
        settings: PipelineSettings | None = None,
    ) -> None:
        models = {
            "vae": vae,
            "reference_net": reference_net,
            "backbone": backbone,
            "face_locator": face_locator,
            "audio_projection": audio_projection,
        }
        for name, model in models.items():
            if not _is_model(model):
                raise ConfigError(
                    f"EMOPipeline: {name} must be a torch module, got {type(model).__name__}"
                )
        self.vae: AutoencoderKL = vae
        self.reference_net: ReferenceNet = reference_net
        self.backbone: Backbone = backbone
        self.face_locator: FaceLocator = face_locator
        self.audio_projection: AudioProjection = audio_projection
        self.audio_encoder = plugins.create("audio_encoder", audio_encoder)
        self.scheduler = plugins.create("scheduler", scheduler)
        if face_mask is None:
            from emo.face_masks.default import default_face_mask

            self.face_mask = default_face_mask()
        else:
            self.face_mask = plugins.create("face_mask", face_mask)
        self.settings = settings or PipelineSettings()
        self._progress_config: dict[str, Any] = {}
        self._check_compatible()

    # -- components ------------------------------------------------------------------
    def _check_compatible(self) -> None:
        proj = self.audio_projection.config
        enc = self.audio_encoder
        if int(proj["feature_dim"]) != int(enc.feature_dim) or int(proj["num_layers"]) != int(
            enc.num_layers
        ):
            raise ConfigError(
                f"audio encoder {type(enc).__name__} gives {enc.num_layers} layers x {enc.feature_dim} "
                f"features but the audio projection expects {proj['num_layers']} x {proj['feature_dim']}; "
                "use the encoder the model was trained with"
            )

    @property
    def components(self) -> dict[str, Any]:
        """Every component by name: ``EMOPipeline(**pipe.components)`` builds a sibling pipeline."""
        return {
            **{name: getattr(self, name) for name in MODEL_COMPONENTS},
            **{name: getattr(self, name) for name in PLUGIN_COMPONENTS},
            "settings": self.settings,
        }

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name in MODEL_COMPONENTS:
            model = getattr(self, name)
            count = sum(p.numel() for p in model.parameters())
            lines.append(f"  {name}={type(model).__name__} ({count:,} parameters),")
        for name, kind in PLUGIN_COMPONENTS.items():
            obj = getattr(self, name)
            plugin = plugins.plugin_name_of(kind, obj)
            label = f"{plugin!r} " if plugin else ""
            lines.append(f"  {name}={label}{type(obj).__name__},")
        lines.append(f"  settings={self.settings},")
        lines.append(f"  device={self.device}, dtype={self.dtype},")
        return "\n".join([*lines, ")"])

    @property
    def denoiser(self) -> EMODenoiser:
        """The conditioning wiring shared with training, over this pipeline's own networks.

        See :class:`emo.denoiser.EMODenoiser` (it holds the same module objects, not copies).
        """
        from emo.denoiser import EMODenoiser

        return EMODenoiser(
            self.reference_net, self.backbone, self.face_locator, self.audio_projection
        )

    @property
    def device(self) -> torch.device:
        """The device the backbone runs on."""
        return next(self.backbone.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The backbone's floating-point dtype."""
        return next(self.backbone.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel (8 for Stable Diffusion VAEs)."""
        return int(2 ** (len(self.vae.config["block_out_channels"]) - 1))

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> EMOPipeline:
        """Move every network (and the audio encoder) to ``device`` and/or ``dtype``; returns ``self``."""
        for name in MODEL_COMPONENTS:
            getattr(self, name).to(device=device, dtype=dtype)
        mover = getattr(self.audio_encoder, "to", None)
        if callable(mover):
            mover(device=device, dtype=dtype)
        return self

    def compile(self, **options: Any) -> EMOPipeline:
        """Compile the Backbone, the network every denoising step runs, with :func:`torch.compile`.

        The module stays the same object (``nn.Module.compile``), so saving and the
        other components are unaffected. The first step of every new input shape
        compiles, which takes minutes on a CPU: measured on 2 CPU cores
        (``benchmarks/performance.py --only compile``), the ``tiny`` preset's step then
        ran 1.24x faster, but compiling took 333 s, far more than a generation saves.
        On the CPU it pays only for very long runs; on GPUs compilation is the usual
        fast path (not measured here).

        Parameters
        ----------
        **options
            Passed to :func:`torch.compile` (``mode="max-autotune"``, ``backend=...``).

        Returns
        -------
        EMOPipeline
            ``self``.
        """
        self.backbone.compile(**options)
        return self

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for the tqdm progress bar, e.g. ``disable=True``."""
        self._progress_config = dict(kwargs)

    # -- persistence ---------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Save every component in its own sub-folder plus ``model_index.json``.

        See :mod:`emo.pipelines.persistence`.
        """
        from emo.pipelines.persistence import save_pipeline

        return save_pipeline(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        **overrides: Any,
    ) -> EMOPipeline:
        """Load a pipeline saved by :meth:`save_pretrained`.

        Parameters
        ----------
        directory
            The pipeline folder.
        device, dtype
            Where and in which precision to put the networks (``device="meta"`` reads no weights).
        **overrides
            Replace components: ``scheduler="euler"`` (a name or class is built from the
            saved scheduler config, keeping shared settings), an instance, or
            ``settings=PipelineSettings(...)``.
        """
        from emo.pipelines.persistence import load_pipeline

        pipe = load_pipeline(cls, directory, device=device, dtype=dtype, overrides=overrides)
        pipe.name_or_path = os.fspath(directory)
        return pipe

    @classmethod
    def from_preset(
        cls,
        preset: str = "tiny",
        *,
        audio_encoder: Any = None,
        scheduler: Any = "ddim",
        face_mask: Any = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> EMOPipeline:
        """Build a pipeline with freshly initialised (random) networks of a preset's shape.

        Random networks produce noise-like videos: this is the starting point for
        training, and the CPU demo and tests. See :mod:`emo.pipelines.builders`.
        """
        from emo.pipelines.builders import build_from_preset

        return build_from_preset(
            cls,
            preset,
            audio_encoder=audio_encoder,
            scheduler=scheduler,
            face_mask=face_mask,
            seed=seed,
            device=device,
            dtype=dtype,
        )

    @classmethod
    def from_pretrained_parts(
        cls,
        sd15_dir: str | os.PathLike[str],
        wav2vec2_dir: str | os.PathLike[str],
        motion_module: str | os.PathLike[str] | None = None,
        *,
        preset: str = "sd15",
        scheduler: Any = "ddim",
        face_mask: Any = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        unet_config: Mapping[str, Any] | None = None,
        vae_config: Mapping[str, Any] | None = None,
    ) -> EMOPipeline:
        """Build a full-size pipeline initialised from pretrained parts on disk (the start of training).

        ``sd15_dir`` is a diffusers Stable Diffusion 1.x folder or a single-file checkpoint.
        See :func:`emo.pipelines.builders.build_from_pretrained_parts`.
        """
        from emo.pipelines.builders import build_from_pretrained_parts

        return build_from_pretrained_parts(
            cls,
            sd15_dir,
            wav2vec2_dir,
            motion_module,
            preset=preset,
            scheduler=scheduler,
            face_mask=face_mask,
            device=device,
            dtype=dtype,
            unet_config=unet_config,
            vae_config=vae_config,
        )

    # -- generation ----------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        audio: Any,
        *,
        height: int | None = None,
        width: int | None = None,
        fps: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        reference_guidance_scale: float | None = None,
        frames_per_clip: int | None = None,
        motion_frames: int | None = None,
        init_strength: float | None = None,
        output_size: int | str | None = None,
        head_motion_speed: float | Sequence[float] | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: OutputType | None = None,
        output_path: str | os.PathLike[str] | None = None,
        writer: Any = None,
        audio_rate: int | None = None,
        mux_sample_rate: int | None = None,
        callback_on_step_end: StepCallback | None = None,
        return_dict: bool = True,
        watermark: Any = True,
        overlap_decoding: bool | None = None,
        content_credentials: Any = None,
    ) -> EMOPipelineOutput | tuple[Any, ...]:
        """Generate the video.

        Parameters
        ----------
        image
            The portrait: a path, PIL image, numpy array or tensor, any size and aspect.
            It is cropped around the face region (``settings.face_crop_scale`` times the face
            box, grown to the output aspect) and resized; RGBA and grayscale are accepted.
        audio
            Anything :func:`emo.audio.loading.load_audio` takes: a path of any audio or video
            format, or an array with its rate in ``audio_rate``. The video has
            ``ceil(duration * fps)`` frames.
        height, width, fps, num_inference_steps, guidance_scale, reference_guidance_scale, frames_per_clip, motion_frames, init_strength
            Override the pipeline's ``settings`` (:class:`~emo.pipelines.settings.PipelineSettings`).
        output_size
            The shorter side, in pixels, of the frames returned and written, the longer
            one keeping the aspect: the decoded frames are resized to it (bicubic,
            antialiased, :mod:`emo.pipelines.output_size`) clip by clip, *before* the
            watermark is embedded. ``None``: ``settings.output_size`` (the model's
            default; ``None`` there is the generated size); ``"native"``: the generated
            ``height x width`` whatever the settings say.
        head_motion_speed
            Head-rotation speed for the speed layers, in degrees per frame *of the generated
            video* (at ``fps``): ``None`` (the settings' default), a number, or one value per
            frame. It is rescaled to the speed encoder's reference frame rate (25 by
            default) on the way in, so a head turning 10 degrees per second gets the same
            speed code at 25 and 30 fps.
        generator
            Source of randomness: the same inputs and seed give the same video.
        latents
            Initial noise for the whole video, ``(1, c, f_total, h/8, w/8)``, instead of sampling it.
        output_type
            ``"pt"``, ``"np"``, ``"pil"`` or ``"latent"``; by default ``"pt"``, or nothing
            kept in memory when ``output_path`` is given.
        output_path
            Stream the frames clip by clip into this video file, with the audio muxed in.
            Peak memory is then bounded by one clip, whatever the audio length. The file
            appears only when complete.
        writer
            ``video_writer`` plugin (name, class or instance); by default chosen from the suffix.
        audio_rate
            Sample rate of ``audio`` when it is an array (required then).
        mux_sample_rate
            Rate of the audio muxed into ``output_path``; by default the source's own rate
            and channels (a 48 kHz stereo song stays 48 kHz stereo). It is read block by
            block while the video is written, so its length does not bound memory.
        callback_on_step_end
            ``fn(pipe, step_index, timestep, kwargs) -> dict | None`` after every denoising
            step; ``kwargs`` holds ``"latents"`` ``(1, c, f, h, w)`` and ``"clip_index"``; a
            returned ``{"latents": ...}`` replaces them.
        return_dict
            Return an :class:`EMOPipelineOutput` (default) or a ``(frames, path)`` tuple.
        watermark
            ``True`` (default): every frame carries emo's invisible watermark (the emo
            version and a per-video id hashed from the inputs and the seed) and the file
            carries a label saying the video is synthetic (:mod:`emo.provenance`).
            ``False`` leaves the frames unmarked: telling viewers the video is synthetic
            is then the user's responsibility; the file label stays. A
            :class:`~emo.provenance.watermark.Watermarker` marks with another key.
            ``"latent"`` output is never marked.
        overlap_decoding
            Decode and write each clip on a background thread while the next clip is
            denoised (:mod:`emo.pipelines.overlap`); the video is the same byte for
            byte. ``None`` (default): on for a CUDA device, off on a CPU, where the
            denoising already uses every core (see the performance guide).
        content_credentials
            Sign ``output_path`` with a C2PA manifest (Content Credentials: made by a
            trained model, emo's version, the model's name and weights hash, the inputs'
            hashes; needs ``emo[c2pa]``). ``None`` (default): sign when ``EMO_C2PA_CERT``
            and ``EMO_C2PA_KEY`` are set; ``False``: never; ``"development"``: an
            untrusted throwaway key; or :class:`~emo.provenance.credentials.SigningCredentials`.
            See :func:`emo.provenance.signing.resolve_credentials`.
        """
        from emo.audio.alignment import num_video_frames
        from emo.audio.loading import load_audio
        from emo.provenance.stamp import GenerationStamp

        overrides = {
            "height": height,
            "width": width,
            "fps": fps,
            "num_inference_steps": num_inference_steps,
            "frames_per_clip": frames_per_clip,
            "motion_frames": motion_frames,
            "guidance_scale": guidance_scale,
            "reference_guidance_scale": reference_guidance_scale,
            "init_strength": init_strength,
        }
        changes: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        if output_size is not None:
            changes["output_size"] = None if output_size == NATIVE else output_size
        try:
            s = self.settings.replace(**changes)
        except ConfigError as exc:
            raise InputError(f"invalid generation argument: {exc}") from None
        height, width, fps = s.height, s.width, float(s.fps)
        out_height, out_width = written_frame_size(height, width, s.output_size)
        steps, frames_per_clip, motion_frames = (
            s.num_inference_steps,
            s.frames_per_clip,
            s.motion_frames,
        )
        audio_cfg, ref_cfg = float(s.guidance_scale), float(s.reference_guidance_scale)
        factor = self.vae_scale_factor
        if height % factor or width % factor:
            raise InputError(
                f"height and width must be multiples of {factor}, got {height}x{width}"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputError(
                f"generator must be a torch.Generator, got {type(generator).__name__}; "
                "e.g. torch.Generator().manual_seed(0)"
            )
        if output_path is not None and not str(output_path).strip():
            raise InputError("output_path is empty; give a file name such as 'out.mp4'")
        if output_type not in (None, "pt", "np", "pil", "latent"):
            raise InputError(
                f"output_type must be 'pt', 'np', 'pil' or 'latent', got {output_type!r}"
            )
        if output_type is None:
            output_type = None if output_path is not None else "pt"
        check_generation_inputs(image, audio, width=width, height=height, audio_rate=audio_rate)
        if (out_height, out_width) != (height, width):
            check_frame_size(out_width, out_height, "output_size frame size")
        overlap = resolve_overlap(overlap_decoding, self.device)

        portrait = prepare_portrait(
            image, self.face_mask, height=height, width=width, crop_scale=s.face_crop_scale
        )
        enc_rate = int(self.audio_encoder.sample_rate)
        waveform = load_audio(audio, sample_rate=enc_rate, source_rate=audio_rate)
        num_frames = num_video_frames(int(waveform.shape[0]), enc_rate, fps)
        speed = head_speed_track(
            s.head_motion_speed if head_motion_speed is None else head_motion_speed, num_frames
        )
        lat_h, lat_w = height // factor, width // factor
        channels = int(self.vae.config["latent_channels"])
        if (
            latents is not None
            and (
                not isinstance(latents, torch.Tensor)
                or not latents.is_floating_point()
                or latents.ndim != 5
                or latents.shape[0] != 1  # one video per call: no batch of noise
                or latents.shape[1] != channels
                or latents.shape[2] < num_frames
                or tuple(latents.shape[-2:]) != (lat_h, lat_w)
            )
        ):
            got = (
                f"{tuple(latents.shape)} {latents.dtype}"
                if isinstance(latents, torch.Tensor)
                else type(latents).__name__
            )
            raise InputError(
                f"latents must be a float tensor (1, {channels}, >= {num_frames}, {lat_h}, "
                f"{lat_w}) for this audio and size (batch 1: one video per call), got {got}"
            )

        stamp = GenerationStamp.for_generation(
            watermark,
            portrait=portrait.image,
            waveform=waveform,
            seed=generator.initial_seed() if generator is not None else torch.initial_seed(),
            settings=s,
            content_credentials=content_credentials if output_path is not None else False,
            model_name=self.name_or_path,
            model_modules=[(name, getattr(self, name)) for name in MODEL_COMPONENTS],
            inputs={"portrait": image, "audio": audio},
        )
        clips = self._denoise_clips(
            portrait=portrait,
            waveform=waveform,
            fps=fps,
            num_frames=num_frames,
            speed=speed,
            steps=steps,
            strength=float(s.init_strength),
            frames_per_clip=frames_per_clip,
            motion_frames=motion_frames,
            audio_cfg=audio_cfg,
            ref_cfg=ref_cfg,
            generator=generator,
            latents=latents,
            callback=callback_on_step_end,
        )
        kept: list[torch.Tensor] = []
        out_size = (out_height, out_width)
        # The mark's texture masking looks at the picture as generated (Watermarker.embed).
        upscale = max(1.0, min(out_size) / min(height, width))
        path: Path | None = None
        if output_path is not None:
            path = Path(output_path)
            video_writer = self._writer_for(path, writer)
            with (
                audio_for_mux(
                    video_writer, audio, audio_rate=audio_rate, mux_sample_rate=mux_sample_rate
                ) as (mux_audio, mux_rate),
                video_writer.open(
                    path,
                    fps=fps,
                    width=out_width,
                    height=out_height,
                    audio=mux_audio,
                    sample_rate=mux_rate,
                ) as session,
            ):
                stamp.label_session(session)

                def write(clip_index: int, clip_latents: torch.Tensor) -> None:
                    # Resized before marking: the mark is made for the pixels written.
                    frames = stamp.mark(
                        self._decode(clip_latents, clip_index, out_size), upscale=upscale
                    )
                    session.write(frames)
                    if output_type is not None:
                        kept.append(clip_latents if output_type == "latent" else frames)

                consume_clips(enumerate(clips), write, overlap=overlap)
        elif output_type == "latent":
            kept.extend(clips)
        else:

            def decode(clip_index: int, clip_latents: torch.Tensor) -> None:
                kept.append(
                    stamp.mark(self._decode(clip_latents, clip_index, out_size), upscale=upscale)
                )

            consume_clips(enumerate(clips), decode, overlap=overlap)

        result = self._format(kept, output_type) if output_type is not None else None
        if not return_dict:
            return (result, path)
        return EMOPipelineOutput(
            frames=result, fps=fps, num_frames=num_frames, path=path, portrait=portrait.image
        )

    def generate_many(
        self,
        jobs: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
        output_dir: str | os.PathLike[str],
        **options: Any,
    ) -> BatchSummary:
        """Make one video per job of a job list with this pipeline; resumable and shardable.

        A thin front of :func:`emo.jobs.runner.generate_many` (see there for ``options``:
        ``defaults``, ``retry_failed``, ``progress``, ...): a JSONL or CSV job file, or
        mappings with its fields (``portrait``, ``audio``, ``output``, ``seed``, ...). The
        videos go under ``output_dir``, with ``results.jsonl``. Under torchrun each
        process makes its share of the jobs.

        Returns
        -------
        BatchSummary
            The counts (done, failed, skipped), the time and the failures.
        """
        from emo.jobs.runner import generate_many

        return generate_many(self, jobs, output_dir, **options)

    # -- internals -----------------------------------------------------------------
    def _writer_for(self, path: Path, writer: Any) -> Any:
        if writer is not None:
            return plugins.create("video_writer", writer)
        from emo.io.writers import writer_for_path

        return writer_for_path(path)

    def _progress(self, total: int) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, **{"desc": "emo", "unit": "step", **self._progress_config})

    def _encode_image(self, image: np.ndarray) -> torch.Tensor:
        """uint8 ``(h, w, 3)`` -> scaled latent ``(1, c, h/8, w/8)`` (the distribution's mode)."""
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].to(self.device, self.vae.dtype)
        pixels = pixels / 127.5 - 1.0
        latent = self.vae.encode(pixels).mode() * float(self.vae.config["scaling_factor"])
        return latent.to(self.dtype)

    def _decode(
        self,
        latents: torch.Tensor,
        clip_index: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Latents ``(1, c, f, h, w)`` -> uint8 frames ``(f, H, W, 3)`` on the CPU.

        ``size`` ``(H, W)`` resizes the decoded frames (:func:`resize_frames`) on the
        VAE's device, before they are rounded: one clip at a time, never the whole video.
        """
        scaled = latents.to(self.vae.dtype) / float(self.vae.config["scaling_factor"])
        images = self.vae.decode(scaled)
        if hasattr(images, "sample"):
            images = images.sample
        check_decoded(images, clip_index=clip_index, dtype=self.vae.dtype)
        pixels = images[0].float().transpose(0, 1)  # c f h w -> f c h w
        if size is not None:
            pixels = resize_frames(pixels, size)
        frames = ((pixels.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return frames.permute(0, 2, 3, 1).contiguous().cpu()  # f c h w -> f h w c

    def _format(self, kept: list[torch.Tensor], output_type: str) -> Any:
        if output_type == "latent":
            return torch.cat(kept, dim=2)
        frames = torch.cat(kept, dim=0)
        if output_type == "pt":
            return frames.permute(0, 3, 1, 2).float() / 255.0
        if output_type == "np":
            return frames.numpy().astype(np.float32) / 255.0
        try:
            from PIL import Image
        except ImportError as exc:
            raise InputError("output_type='pil' needs Pillow: pip install pillow") from exc
        return [Image.fromarray(frame) for frame in frames.numpy()]

    def _denoise_clips(
        self,
        *,
        portrait: Any,
        waveform: torch.Tensor,
        fps: float,
        num_frames: int,
        speed: torch.Tensor,
        steps: int,
        strength: float,
        frames_per_clip: int,
        motion_frames: int,
        audio_cfg: float,
        ref_cfg: float,
        generator: torch.Generator | None,
        latents: torch.Tensor | None,
        callback: StepCallback | None,
    ) -> Iterator[torch.Tensor]:
        """Yield the denoised latents ``(1, c, f, h, w)`` of each clip, one clip at a time."""
        device, dtype = self.device, self.dtype
        context = int(self.audio_projection.config["context_frames"])
        audio = ClipAudioFeatures(
            self.audio_encoder,
            waveform,
            fps=fps,
            num_frames=num_frames,
            context_seconds=self.settings.audio_context_seconds,
            block_frames=max(frames_per_clip + 2 * context, math.ceil(_AUDIO_BLOCK_SECONDS * fps)),
        )
        # Guidance branches [full, reference only, neither], batched in one call or run
        # one by one (settings.guidance_batching).
        branches = guidance_branch_count(audio_cfg, ref_cfg)
        use_ref_cfg = branches == 3
        batched = self._guidance_batched(device)

        # Every condition goes through the denoiser the trainer uses: the unguided
        # branches get exactly the inputs condition dropout gave the model in training.
        denoiser = self.denoiser
        ref_latent = self._encode_image(portrait.image)
        ref_features, ref_rows = self._reference_features(denoiser, ref_latent, use_ref_cfg)
        # Reference keys/values: projected once per generation, once per distinct row.
        ref_kv = self.backbone.project_reference(ref_features, dtype=dtype).select(ref_rows)
        # The face region is the same in every frame: one FaceLocator pass on one frame
        # serves every frame of every clip (it is broadcast along time).
        face = denoiser.face_features(portrait.mask.to(device, dtype)[None])  # (1, c, 1, h, w)
        motion = first_clip_motion_features(
            self.reference_net,
            ref_latent,
            ref_features,
            motion_frames,
            self.settings.first_clip_motion,
        )
        motion_latents: torch.Tensor | None = None
        anchor = ref_latent  # (1, c, h, w): where a clip starts when strength < 1
        total_clips = math.ceil(num_frames / frames_per_clip)
        watch = NonFiniteWatch(device)
        self.scheduler.set_timesteps(steps, device=device)
        timesteps = self._strength_timesteps(strength)
        # The timesteps are read to the host once: the scheduler gets numbers and the
        # network a device tensor, so no step waits for the device.
        host_timesteps = timesteps.tolist()
        device_timesteps = timesteps.to(device)
        progress = self._progress(total_clips * len(timesteps))
        try:
            for clip_index in range(total_clips):
                start = clip_index * frames_per_clip
                stop = min(num_frames, start + frames_per_clip)
                audio_tokens = self._audio_tokens(denoiser, audio, start, stop, context, branches)
                clip_speed = None  # (1, f + 2m): shared by the guidance branches
                if self.backbone.speed_encoder is not None:
                    m = int(self.backbone.config["speed_context_frames"])
                    clip_speed = clip_speed_window(speed, start, stop, m).to(device, dtype)
                if motion_latents is not None:
                    motion = denoiser.motion_features(motion_latents)

                # Checked, laid out and embedded once per clip, not at every step; the
                # audio of every branch but the first is dropped (all-zero tokens).
                conditions = self.backbone.prepare_conditions(
                    branches,
                    stop - start,
                    reference_features=ref_kv,
                    audio_tokens=audio_tokens,
                    audio_rows=(0,) if branches > 1 else None,
                    motion_features=motion,
                    speed=clip_speed,
                    speed_fps=fps,
                    dtype=dtype,
                )
                per_branch = [conditions.select([i]) for i in range(branches)]

                sample = self._initial_noise(latents, start, stop, ref_latent, generator)
                # Same timesteps for every clip; set again to reset multistep solvers' history.
                self.scheduler.set_timesteps(steps, device=device)
                if strength < 1.0:
                    sample = self.scheduler.add_noise(
                        anchor[:, :, None].expand_as(sample), sample, timesteps[:1]
                    )
                else:
                    sample = sample * float(self.scheduler.init_noise_sigma)
                watch.reset()
                for step_index, t in enumerate(host_timesteps):
                    t_device = device_timesteps[step_index]
                    model_in = self.scheduler.scale_model_input(sample, t)
                    if batched or branches == 1:
                        noise_pred = denoiser.denoise(
                            model_in.expand(branches, -1, -1, -1, -1),
                            t_device.reshape(1).expand(branches),
                            face=face,
                            conditions=conditions,
                        )
                    else:
                        noise_pred = torch.cat(
                            [
                                denoiser.denoise(
                                    model_in, t_device.reshape(1), face=face, conditions=branch
                                )
                                for branch in per_branch
                            ]
                        )
                    noise_pred = self._guide(noise_pred, audio_cfg, ref_cfg, use_ref_cfg)
                    sample = scheduler_step(
                        self.scheduler, noise_pred, t, sample, generator=generator
                    )
                    if callback is not None:
                        changed = callback(
                            self,
                            step_index,
                            t_device,
                            {"latents": sample, "clip_index": clip_index},
                        )
                        if changed is not None:
                            sample = self._latents_from_callback(changed, sample)
                    watch.observe(step_index, sample)
                    progress.update(1)
                watch.check(
                    clip_index=clip_index, total_clips=total_clips, steps=steps, dtype=dtype
                )
                motion_latents = next_motion_latents(motion_latents, sample, motion_frames)
                anchor = sample[:, :, -1]
                yield sample
        finally:
            progress.close()

    def _strength_timesteps(self, strength: float) -> torch.Tensor:
        """The scheduler's timesteps from the one at ``strength`` of the schedule on.

        ``strength`` 1 keeps them all; below 1 the first ``round(steps * (1 - strength))``
        are skipped (at least one step is kept). Called after ``set_timesteps``.
        """
        timesteps: torch.Tensor = self.scheduler.timesteps
        if strength >= 1.0:
            return timesteps
        skip = min(len(timesteps) - 1, round(len(timesteps) * (1.0 - strength)))
        return timesteps[skip:]

    @staticmethod
    def _reference_features(
        denoiser: EMODenoiser, ref_latent: torch.Tensor, use_ref_cfg: bool
    ) -> tuple[Any, list[int]]:
        """ReferenceNet features of the portrait, computed once per generation.

        Returns the features of the distinct reference rows and, per guidance branch,
        its row: batch 1 shared by every branch (``[0]``, broadcast without a copy),
        or with reference guidance the rows ``[portrait, dropped]`` and ``[0, 0, 1]``
        for the branches ``[full, reference only, neither]`` ("dropped": what
        training's reference dropout gives, see :class:`~emo.denoiser.EMODenoiser`).
        """
        if not use_ref_cfg:
            return denoiser.reference_features(ref_latent), [0]
        drop = torch.tensor([False, True], device=ref_latent.device)
        features = denoiser.reference_features(ref_latent.expand(2, -1, -1, -1), drop)
        return features, [0, 0, 1]

    def _guidance_batched(self, device: torch.device) -> bool:
        """Whether the guidance branches run as one batch (else one after the other)."""
        mode = self.settings.guidance_batching
        if mode == "auto":
            return device.type not in GUIDANCE_SEQUENTIAL_DEVICES
        return mode == "batched"

    def _audio_tokens(
        self,
        denoiser: EMODenoiser,
        audio: ClipAudioFeatures,
        start: int,
        stop: int,
        context: int,
        branches: int,
    ) -> torch.Tensor:
        """Audio tokens ``(branches, f, t, d)`` of frames ``start .. stop - 1``.

        The branches ``[full, reference only, neither]``: all but the first have their
        audio dropped (all-zero tokens, as training's audio dropout gives).
        """
        window = audio.window(start, stop, context).to(self.device, self.dtype)
        tokens = denoiser.audio_tokens(window[None])  # (1, f, t, d), computed once
        if branches == 1:
            return tokens
        drop = torch.arange(branches, device=tokens.device) > 0
        return drop_rows(tokens.expand(branches, -1, -1, -1), drop)

    def _initial_noise(
        self,
        latents: torch.Tensor | None,
        start: int,
        stop: int,
        like: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if latents is not None:
            return latents[:, :, start:stop].to(like.device, like.dtype)
        shape = torch.Size((1, like.shape[1], stop - start, like.shape[2], like.shape[3]))
        return random_noise(shape, generator, like.device).to(like.dtype)

    @staticmethod
    def _latents_from_callback(changed: Any, sample: torch.Tensor) -> torch.Tensor:
        if not isinstance(changed, dict):
            raise InputError(
                f"callback_on_step_end must return a dict or None, got {type(changed).__name__}"
            )
        if "latents" not in changed:
            return sample
        latents = changed["latents"]
        if not isinstance(latents, torch.Tensor) or latents.shape != sample.shape:
            got = (
                tuple(latents.shape)
                if isinstance(latents, torch.Tensor)
                else type(latents).__name__
            )
            raise InputError(
                f"callback_on_step_end returned latents {got}; they must be a tensor of "
                f"shape {tuple(sample.shape)}"
            )
        return latents.to(sample.device, sample.dtype)

    @staticmethod
    def _guide(
        noise_pred: torch.Tensor, audio_cfg: float, ref_cfg: float, use_ref_cfg: bool
    ) -> torch.Tensor:
        """Combine the guidance branches ``[full, reference only, neither]`` into one prediction."""
        if noise_pred.shape[0] == 1:
            return noise_pred
        neither = noise_pred[2:3] if use_ref_cfg else None
        return guided_prediction(noise_pred[0:1], noise_pred[1:2], neither, audio_cfg, ref_cfg)
