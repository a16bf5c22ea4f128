"""The starting model of a stage: a previous stage's pipeline, pretrained parts, or a preset."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from emo.errors import ConfigError

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.settings import TrainingConfig

__all__ = ["build_pipeline", "training_scheduler_config"]


def training_scheduler_config(config: TrainingConfig) -> dict[str, Any]:
    """The noise-schedule config trained with (saved with the model for inference)."""
    from emo.pipelines.builders import SD15_SCHEDULER_CONFIG

    noise = config.noise
    return {
        **SD15_SCHEDULER_CONFIG,
        "prediction_type": noise.prediction_type,
        "rescale_betas_zero_snr": noise.zero_snr,
        "timestep_spacing": noise.timestep_spacing,
    }


def _fresh_from_preset(
    config: TrainingConfig, encoder: Any, seed: int
) -> dict[str, torch.nn.Module]:
    from emo.models.presets import get_preset

    m = config.model
    preset = get_preset(m.preset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {
            "vae": preset.build_vae(**m.vae),
            "reference_net": preset.build_reference_net(**m.unet),
            "backbone": preset.build_backbone(**{**m.unet, **m.backbone}),
            "face_locator": preset.build_face_locator(**m.face_locator),
            "audio_projection": preset.build_audio_projection(
                **{
                    "feature_dim": int(encoder.feature_dim),
                    "num_layers": int(encoder.num_layers),
                    **m.audio_projection,
                }
            ),
        }


def build_pipeline(config: TrainingConfig, data_info: dict[str, Any]) -> EMOPipeline:
    """Build the stage's starting pipeline on the CPU in float32.

    ``model.init_from`` (a pipeline folder) wins; else ``model.sd15`` +
    ``model.wav2vec2`` (+ ``motion_module``) build the full-size model from
    pretrained parts; else the preset with its overrides, freshly initialised
    with ``seed`` (the same on every process, so every rank starts equal). The
    audio encoder of a fresh model is the one the data was prepared with.

    Raises
    ------
    ConfigError
        If the model does not fit the data (audio features, resolution).
    """
    from emo import plugins
    from emo.pipelines.builders import make_scheduler
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.pipelines.settings import PipelineSettings

    m = config.model
    scheduler = make_scheduler(config.noise.scheduler, training_scheduler_config(config))
    audio = data_info["audio_encoder"]
    if m.init_from is not None:
        pipe = EMOPipeline.from_pretrained(m.init_from, scheduler=scheduler, face_mask="full")
    elif m.sd15 is not None:
        assert m.wav2vec2 is not None
        pipe = EMOPipeline.from_pretrained_parts(
            m.sd15, m.wav2vec2, m.motion_module, scheduler=scheduler, face_mask="full"
        )
    else:
        name = m.audio_encoder or audio["name"]
        options = audio.get("config", {}) if name == audio["name"] else {}
        encoder = plugins.create("audio_encoder", plugins.load("audio_encoder", name)(**options))
        models: dict[str, Any] = _fresh_from_preset(config, encoder, config.seed)
        pipe = EMOPipeline(
            **models,
            audio_encoder=encoder,
            scheduler=scheduler,
            face_mask="full",
        )
    if m.motion_module is not None and m.sd15 is None:
        pipe.backbone.load_motion_modules(m.motion_module)
    proj = pipe.audio_projection.config
    if (int(proj["num_layers"]), int(proj["feature_dim"])) != (
        int(audio["num_layers"]),
        int(audio["feature_dim"]),
    ):
        raise ConfigError(
            f"the data was prepared with audio encoder {audio['name']!r} "
            f"({audio['num_layers']} x {audio['feature_dim']} features) but the model expects "
            f"{proj['num_layers']} x {proj['feature_dim']}; prepare the data with the model's encoder"
        )
    resolution = int(data_info["resolution"])
    factor = pipe.vae_scale_factor
    if resolution % factor or resolution // factor < 1:
        raise ConfigError(
            f"the data's resolution {resolution} is not a multiple of the VAE factor {factor}"
        )
    settings = pipe.settings.to_dict()
    frames_per_clip = config.data.frames_per_clip
    motion = config.data.motion_frames
    changes: dict[str, Any] = {
        "height": resolution,
        "width": resolution,
        "fps": float(data_info["fps"]),
    }
    if config.stage > 1:
        changes["frames_per_clip"] = frames_per_clip or settings["frames_per_clip"]
        changes["motion_frames"] = settings["motion_frames"] if motion is None else motion
    pipe.settings = PipelineSettings.from_dict({**settings, **changes})
    with contextlib.suppress(AttributeError):
        pipe.face_mask = plugins.create("face_mask", "full")
    for name in ("vae", "reference_net", "backbone", "face_locator", "audio_projection"):
        getattr(pipe, name).float()
    return pipe
