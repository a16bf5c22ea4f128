"""Generation defaults of a Hallo-layout model, saved with the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from emo.errors import ConfigError

__all__ = ["HALLO_SCHEDULER_CONFIG", "HalloSettings"]

#: Hallo's noise scheduler (configs/inference/default.yaml, as diffusers' DDIMScheduler
#: receives it; set_alpha_to_one is diffusers' default True): linear betas, not SD's
#: scaled_linear.
HALLO_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "linear",
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
}


@dataclass(frozen=True)
class HalloSettings:
    """The defaults :class:`~emo.pipelines.hallo_pipeline.HalloPipeline` generates with.

    Hallo's own values (``configs/inference/default.yaml``) unless said otherwise.

    Attributes
    ----------
    height, width
        Output size in pixels (Hallo: 512; the audio modules need square latents in
        Hallo, emo's do not).
    fps
        Frame rate (25).
    frames_per_clip
        Frames per clip ``f`` (16).
    motion_frames
        Frames of the previous clip that condition the next ``n`` (2).
    num_inference_steps
        DDIM steps per clip (40).
    guidance_scale
        Classifier-free guidance (3.5).
    pose_weight, face_weight, lip_weight
        Weights of the three region-masked audio attentions (1.0 each).
    face_expand_ratio
        Growth of the face box for the masks and the face locator (1.2).
    seed
        Seed of the noise generator when none is given (Hallo seeds 42).
    """

    height: int = 512
    width: int = 512
    fps: int = 25
    frames_per_clip: int = 16
    motion_frames: int = 2
    num_inference_steps: int = 40
    guidance_scale: float = 3.5
    pose_weight: float = 1.0
    face_weight: float = 1.0
    lip_weight: float = 1.0
    face_expand_ratio: float = 1.2
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("height", "width", "fps", "frames_per_clip", "num_inference_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"HalloSettings: {name} must be a positive int, got {value!r}")
        if self.motion_frames < 0:
            raise ConfigError(
                f"HalloSettings: motion_frames must be >= 0, got {self.motion_frames}"
            )
        if self.face_expand_ratio <= 0:
            raise ConfigError(
                f"HalloSettings: face_expand_ratio must be > 0, got {self.face_expand_ratio}"
            )

    @property
    def region_weights(self) -> tuple[float, float, float]:
        """``(pose, face, lip)`` weights of the masked audio attentions."""
        return (float(self.pose_weight), float(self.face_weight), float(self.lip_weight))

    @classmethod
    def from_hallo_config(cls, data: Mapping[str, Any]) -> HalloSettings:
        """Settings from Hallo's inference configuration (``configs/inference/default.yaml``'s
        keys, as ``hallo_config.json`` holds them); missing keys keep Hallo's defaults."""
        values: dict[str, Any] = {}
        source = data.get("data", {})
        image = source.get("source_image", {}) if isinstance(source, Mapping) else {}
        for key, name in (("height", "height"), ("width", "width")):
            if key in image:
                values[name] = int(image[key])
        for key, name in (
            ("n_sample_frames", "frames_per_clip"),
            ("n_motion_frames", "motion_frames"),
        ):
            if key in source:
                values[name] = int(source[key])
        fps = source.get("export_video", {}).get("fps") if isinstance(source, Mapping) else None
        if fps is not None:
            values["fps"] = int(fps)
        for key, name, kind in (
            ("inference_steps", "num_inference_steps", int),
            ("cfg_scale", "guidance_scale", float),
            ("pose_weight", "pose_weight", float),
            ("face_weight", "face_weight", float),
            ("lip_weight", "lip_weight", float),
            ("face_expand_ratio", "face_expand_ratio", float),
            ("noise_seed", "seed", int),
        ):
            if key in data:
                values[name] = kind(data[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HalloSettings:
        """Build settings from a dict, ignoring unknown keys (written by a newer emo)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> HalloSettings:
        """A copy with some settings changed."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown Hallo settings {unknown}")
        return type(self)(**{**self.to_dict(), **changes})
