"""Generation defaults saved with a pipeline."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from emo.errors import ConfigError

__all__ = [
    "FIRST_CLIP_MOTION",
    "GUIDANCE_BATCHING",
    "GUIDANCE_SEQUENTIAL_DEVICES",
    "PipelineSettings",
]

#: Choices of :attr:`PipelineSettings.first_clip_motion`.
FIRST_CLIP_MOTION = ("zeros", "reference")
#: Choices of :attr:`PipelineSettings.guidance_batching`.
GUIDANCE_BATCHING = ("auto", "batched", "sequential")
#: Device types where ``guidance_batching="auto"`` runs the branches one by one: where
#: that was measured faster (``benchmarks/performance.py --only backbone,guidance``). None
#: so far: on a 2-core CPU one call per branch took 1.06x the time of the batch, for
#: the tiny preset and for the full-size Backbone alike; on GPUs batching is the usual
#: choice.
GUIDANCE_SEQUENTIAL_DEVICES: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineSettings:
    """The defaults :meth:`EMOPipeline.__call__ <emo.pipelines.emo_pipeline.EMOPipeline.__call__>` uses.

    They belong to the trained model (a model trained at 512x512, 25 fps, 12-frame
    clips generates best with those), so they are saved in the pipeline folder.

    Attributes
    ----------
    height, width
        Output size in pixels (multiples of the VAE's downscale factor).
    fps
        Video frame rate.
    frames_per_clip
        Frames generated per clip, ``f`` (12 in the paper).
    motion_frames
        Previous frames that condition the next clip, ``n`` (4 in the paper).
    num_inference_steps
        Denoising steps per clip (40 DDIM steps in the paper).
    guidance_scale
        Classifier-free guidance on the audio.
    reference_guidance_scale
        Classifier-free guidance on the reference image (1.0 disables it).
    head_motion_speed
        Default head-rotation speed in degrees per frame of the generated video (at ``fps``),
        fed to the speed layers after rescaling to their reference frame rate.
    face_crop_scale
        The face box is grown by this factor (around its centre) before cropping the
        portrait, at most to the image's size; 1.0 crops the face region tightly.
    audio_context_seconds
        Seconds of extra audio the encoder sees on each side of a block of audio (the
        audio is encoded in 10 s blocks, so memory does not grow with its length). The
        ``mel`` encoder then gives exactly the whole-file features; wav2vec2 does not (it
        attends to all it sees): 2 s cover its convolutional position embedding (2.56 s
        wide) and keep the difference to a mean of about 3% of a layer's standard
        deviation, at most about 0.3-0.4 (measured, see ``benchmarks/audio_blocks.py``);
        with 1 s single frames near block seams differed by up to 1.7.
    first_clip_motion
        What stands in for the motion frames of the first clip, which has no previous
        clip: ``"zeros"`` (default, the paper: zero feature maps) or ``"reference"`` (the
        reference image's latent repeated ``motion_frames`` times through the
        ReferenceNet).
    guidance_batching
        How the classifier-free guidance branches (up to three: full, reference only,
        neither) run at each step: ``"batched"`` (one network call on a batch of
        branches), ``"sequential"`` (one call per branch: a third of the activation
        memory, for tight GPUs), or ``"auto"`` (default): whichever was measured
        faster on the device type (:data:`GUIDANCE_SEQUENTIAL_DEVICES`), batched on
        the CPU by 6 % (see the performance guide). Both give the same video up to
        float rounding; for a given setting the result is deterministic.
    init_strength
        Where each clip's denoising starts. 1.0 (default, the paper): from pure noise,
        through every step. Below 1: from an anchor noised to the timestep at that
        fraction of the schedule, running only the remaining steps (SDEdit): the first
        clip's anchor is the reference latent, every later clip's the previous clip's
        last frame. Identity and pose then carry over from the anchor and the network
        redraws what the audio and the motion change; a small model that cannot yet
        draw a face from noise alone keeps its viewers' face this way.
    output_size
        The shorter side, in pixels, of the frames returned and written (the longer side
        keeps the aspect): the decoded frames are resized to it before the watermark is
        embedded (bicubic, antialiased; :mod:`emo.pipelines.output_size`). ``None``
        (default): the generated ``height x width``. A model that generates small frames
        saves e.g. 256 here, because the invisible watermark does not survive a re-encode
        in frames smaller than about 192-256 pixels (see the provenance guide). Upscaling
        adds no detail.
    """

    height: int = 512
    width: int = 512
    fps: float = 25.0
    frames_per_clip: int = 12
    motion_frames: int = 4
    num_inference_steps: int = 40
    guidance_scale: float = 3.5
    reference_guidance_scale: float = 1.0
    head_motion_speed: float = 0.35
    face_crop_scale: float = 2.0
    audio_context_seconds: float = 2.0
    first_clip_motion: str = "zeros"
    guidance_batching: str = "auto"
    init_strength: float = 1.0
    output_size: int | None = None

    def __post_init__(self) -> None:
        positive_ints = ("height", "width", "frames_per_clip", "num_inference_steps")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"PipelineSettings.{name} must be a positive int, got {value!r}")
        # bool is an int subclass: True must not pass as 1 (motion_frames=True, fps=True...).
        motion = self.motion_frames
        if isinstance(motion, bool) or not isinstance(motion, int) or motion < 0:
            raise ConfigError(
                f"PipelineSettings.motion_frames must be an int >= 0, got {self.motion_frames!r}"
            )
        for name in ("fps", "face_crop_scale"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"PipelineSettings.{name} must be a positive number, got {value!r}"
                )
        for name in (
            "guidance_scale",
            "reference_guidance_scale",
            "head_motion_speed",
            "audio_context_seconds",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"PipelineSettings.{name} must be a number >= 0, got {value!r}")

        if self.guidance_batching not in GUIDANCE_BATCHING:
            raise ConfigError(
                f"PipelineSettings.guidance_batching must be one of {GUIDANCE_BATCHING}, got "
                f"{self.guidance_batching!r}"
            )
        strength = self.init_strength
        if (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not (0.0 < strength <= 1.0)
        ):
            raise ConfigError(
                f"PipelineSettings.init_strength must be a number in (0, 1], got {strength!r}"
            )
        size = self.output_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ConfigError(
                f"PipelineSettings.output_size must be a positive int or None, got {size!r}"
            )
        if self.first_clip_motion not in FIRST_CLIP_MOTION:
            raise ConfigError(
                f"PipelineSettings.first_clip_motion must be one of {FIRST_CLIP_MOTION}, got "
                f"{self.first_clip_motion!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineSettings:
        """Build settings from a dict, ignoring unknown keys (written by a newer emo)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> PipelineSettings:
        """Return a copy with some settings changed."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown pipeline settings {unknown}")
        return type(self)(**{**self.to_dict(), **changes})
