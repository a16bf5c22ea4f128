"""Building pipelines from presets (random weights) and from pretrained parts on disk."""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from emo import plugins
from emo.errors import CheckpointError, ConfigError, EMOWarning
from emo.pipelines.settings import PipelineSettings

if TYPE_CHECKING:
    from emo.modeling import LoadReport
    from emo.models.presets import ModelPreset
    from emo.pipelines.emo_pipeline import EMOPipeline

__all__ = [
    "SD15_SCHEDULER_CONFIG",
    "build_from_preset",
    "build_from_pretrained_parts",
    "make_scheduler",
]

#: The noise schedule Stable Diffusion 1.5 was trained with (its ``scheduler_config.json``).
SD15_SCHEDULER_CONFIG: Mapping[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


def make_scheduler(spec: Any, config: Mapping[str, Any] = SD15_SCHEDULER_CONFIG) -> Any:
    """A scheduler plugin from a name, class or instance; names and classes get ``config``.

    ``config`` is applied with ``from_config``, which keeps only the settings the
    scheduler class knows, so any scheduler can be built from an SD noise schedule.
    """
    if isinstance(spec, str):
        spec = plugins.load("scheduler", spec)
    if isinstance(spec, type):
        builder = getattr(spec, "from_config", None)
        return plugins.create("scheduler", builder(dict(config)) if callable(builder) else spec)
    return plugins.create("scheduler", spec)


def _settings_for(preset: ModelPreset) -> PipelineSettings:
    return PipelineSettings(
        height=preset.resolution,
        width=preset.resolution,
        frames_per_clip=preset.frames_per_clip,
        motion_frames=preset.motion_frames,
    )


def _finish(
    pipe: EMOPipeline, device: str | torch.device | None, dtype: torch.dtype | None
) -> EMOPipeline:
    for name in ("vae", "reference_net", "backbone", "face_locator", "audio_projection"):
        getattr(pipe, name).eval()
    if device is not None or dtype is not None:
        pipe.to(device=device, dtype=dtype)
    return pipe


def build_from_preset(
    cls: type[EMOPipeline],
    preset: str,
    *,
    audio_encoder: Any = None,
    scheduler: Any = "ddim",
    face_mask: Any = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> EMOPipeline:
    """Build a pipeline of a preset's shape with freshly initialised networks.

    Parameters
    ----------
    cls
        The pipeline class.
    preset
        ``"tiny"`` (CPU demo, tests) or ``"sd15"`` (the paper's size).
    audio_encoder
        An audio-encoder plugin; default ``"mel"`` (no weights needed). The
        AudioProjection is sized to the encoder's ``num_layers`` and ``feature_dim``.
    scheduler
        A scheduler plugin; a name or class is built with the SD1.5 noise schedule.
    face_mask
        A face-mask plugin; ``None``: ``"auto"`` when a face detector is installed, else
        ``"full"`` with a warning.
    seed
        Seed of the weight initialisation (the global RNG is left untouched).
    device, dtype
        Where and in which precision to put the networks. ``device="meta"`` builds
        them without allocating memory.
    """
    from emo.models.presets import get_preset

    p = get_preset(preset)
    encoder = plugins.create("audio_encoder", audio_encoder if audio_encoder is not None else "mel")
    on_meta = device is not None and torch.device(device).type == "meta"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device("meta") if on_meta else contextlib.nullcontext():
            models = {
                "vae": p.build_vae(),
                "reference_net": p.build_reference_net(),
                "backbone": p.build_backbone(),
                "face_locator": p.build_face_locator(),
                "audio_projection": p.build_audio_projection(
                    feature_dim=int(encoder.feature_dim), num_layers=int(encoder.num_layers)
                ),
            }
    pipe = cls(
        **models,
        audio_encoder=encoder,
        scheduler=make_scheduler(scheduler),
        face_mask=face_mask,
        settings=_settings_for(p),
    )
    return _finish(pipe, None if on_meta else device, dtype)


def build_from_pretrained_parts(
    cls: type[EMOPipeline],
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
    """Build a full-size pipeline initialised from pretrained parts a user has on disk.

    - ``sd15_dir``: a diffusers-format Stable Diffusion 1.x folder (``unet/``, ``vae/``,
      optionally ``scheduler/``), or a single-file SD 1.x checkpoint (``.safetensors`` or
      ``.ckpt`` in the original LDM layout). The UNet initialises both the ReferenceNet
      and the Backbone's spatial layers; every new branch (audio attention output,
      temporal modules, speed layers, face locator) starts at zero, so the Backbone
      initially equals the SD UNet frame by frame.
    - ``wav2vec2_dir``: a transformers Wav2Vec2 folder (any size); the AudioProjection is
      sized to its layers and width.
    - ``motion_module``: optional AnimateDiff motion-module weights (original
      ``mm_sd_v15_v2`` layout or diffusers ``MotionAdapter`` layout) for the temporal modules.
      Temporal modules the checkpoint lacks (AnimateDiff v1 has no mid-block module)
      keep their fresh, identity initialisation and are named in an
      :class:`~emo.errors.EMOWarning`; a checkpoint that fits nothing is a
      :class:`~emo.errors.CheckpointError`.
    - ``unet_config`` / ``vae_config``: for a single-file checkpoint, values replacing
      those of the SD 1.5 configs (diffusers names), for checkpoints of another shape.

    With ``device="meta"`` only the configs are read: every network is built on the meta
    device, allocating no memory and reading no weights (to inspect shapes and sizes).

    Raises
    ------
    CheckpointError
        If a folder or file is missing or its weights do not fit.
    """
    from emo.audio.wav2vec2 import Wav2Vec2Encoder
    from emo.loaders.diffusers_unet import build_from_unet_source
    from emo.models.backbone import Backbone
    from emo.models.presets import get_preset
    from emo.models.reference_net import ReferenceNet

    p = get_preset(preset)
    root = Path(sd15_dir)
    if not root.exists():
        raise CheckpointError(
            f"Stable Diffusion checkpoint {os.fspath(root)!r} does not exist; give a diffusers "
            "folder (unet/, vae/) or a single .safetensors/.ckpt file"
        )
    backbone_extra = {k: v for k, v in p.backbone.items() if k not in p.unet}
    on_meta = device is not None and torch.device(device).type == "meta"
    unet_cfg, unet_state, vae = _read_stable_diffusion(root, on_meta, unet_config, vae_config)
    if on_meta:
        with torch.device("meta"):
            encoder = Wav2Vec2Encoder(model_path=os.fspath(wav2vec2_dir))
            models = {
                "vae": vae,
                "reference_net": ReferenceNet(**unet_cfg),
                "backbone": Backbone(**{**unet_cfg, **backbone_extra}),
            }
    else:
        assert unet_state is not None
        reference_net, _ = build_from_unet_source(ReferenceNet, (unet_cfg, unet_state))
        backbone, _ = build_from_unet_source(Backbone, (unet_cfg, unet_state), **backbone_extra)
        del unet_state
        if motion_module is not None:
            report_missing_motion_modules(
                backbone.load_motion_modules(motion_module), motion_module
            )
        encoder = Wav2Vec2Encoder(model_path=os.fspath(wav2vec2_dir))
        models = {"vae": vae, "reference_net": reference_net, "backbone": backbone}
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        models["face_locator"] = p.build_face_locator()
        models["audio_projection"] = p.build_audio_projection(
            feature_dim=int(encoder.feature_dim), num_layers=int(encoder.num_layers)
        )
    scheduler_config = _scheduler_config(root) if root.is_dir() else SD15_SCHEDULER_CONFIG
    pipe = cls(
        **models,
        audio_encoder=encoder,
        scheduler=make_scheduler(scheduler, scheduler_config),
        face_mask=face_mask,
        settings=_settings_for(p),
    )
    return _finish(pipe, None if on_meta else device, dtype)


def _read_stable_diffusion(
    root: Path,
    on_meta: bool,
    unet_overrides: Mapping[str, Any] | None,
    vae_overrides: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None, Any]:
    """UNet config, UNet tensors (``None`` on meta) and the built VAE of an SD 1.x checkpoint."""
    from emo.loaders.diffusers_unet import (
        find_unet_files,
        load_sd15_unet_state_dict,
        unet_config_from_diffusers,
    )
    from emo.loaders.single_file import (
        SD15_VAE_CONFIG,
        load_sd15_single_file,
        sd15_unet_config,
    )
    from emo.models.vae import AutoencoderKL

    if root.is_dir():
        if on_meta:
            config_path, _ = find_unet_files(root)
            raw = json.loads(config_path.read_text(encoding="utf-8"))
            with torch.device("meta"):
                vae = AutoencoderKL.from_config(_vae_config(root))
            return unet_config_from_diffusers(raw), None, vae
        unet_cfg, unet_state = load_sd15_unet_state_dict(root)
        return unet_cfg, unet_state, AutoencoderKL.from_diffusers(root)
    if on_meta:
        unet_raw = {**sd15_unet_config(), **(unet_overrides or {})}
        with torch.device("meta"):
            vae = AutoencoderKL.from_config({**SD15_VAE_CONFIG, **(vae_overrides or {})})
        return unet_config_from_diffusers(unet_raw), None, vae
    unet_raw, unet_state, vae_cfg, vae_state = load_sd15_single_file(
        root, unet_config=unet_overrides, vae_config=vae_overrides
    )
    vae = AutoencoderKL.from_config(vae_cfg)
    vae.load_weights(vae_state)
    return unet_config_from_diffusers(unet_raw), unet_state, vae


def _vae_config(root: Path) -> dict[str, Any]:
    for folder in (root / "vae", root):
        path = folder / "config.json"
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    raise CheckpointError(f"no vae/config.json in {os.fspath(root)!r}")


def _scheduler_config(root: Path) -> Mapping[str, Any]:
    path = root / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return SD15_SCHEDULER_CONFIG
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{os.fspath(path)!r} is not valid JSON: {exc}") from exc
    return {**SD15_SCHEDULER_CONFIG, **data}


#: A temporal module's path inside a key (``"mid_block.motion_modules.0"``).
_MOTION_MODULE_PATH = re.compile(
    r"((?:down_blocks\.\d+|up_blocks\.\d+|mid_block)\.motion_modules\.\d+)\."
)
#: EMO-only tensors of a temporal module: an AnimateDiff checkpoint never has them.
_EMO_ONLY_MOTION = re.compile(r"\.(speed_attention|speed_norm)\.")


def report_missing_motion_modules(report: LoadReport, source: str | os.PathLike[str]) -> list[str]:
    """Warn about the temporal modules a motion-module checkpoint did not provide.

    Parameters
    ----------
    report
        What :meth:`Backbone.load_motion_modules <emo.models.Backbone.load_motion_modules>`
        returned.
    source
        The checkpoint, named in the warning.

    Returns
    -------
    list of str
        The paths of the temporal modules with missing tensors (e.g.
        ``["mid_block.motion_modules.0"]`` for AnimateDiff v1), in model order; empty
        when the checkpoint covered every module (the EMO-only speed attention aside).
    """
    missing = [k for k in report.missing_keys if not _EMO_ONLY_MOTION.search(k)]
    modules: list[str] = []
    for key in missing:
        match = _MOTION_MODULE_PATH.search(key)
        path = match.group(1) if match else key
        if path not in modules:
            modules.append(path)
    if modules:
        warnings.warn(
            f"motion module {os.fspath(source)!r} lacks {len(missing)} tensors of "
            f"{len(modules)} temporal modules ({', '.join(modules)}); they keep their fresh "
            "initialisation (identity: no temporal mixing there until trained). An AnimateDiff "
            "v1 checkpoint, for one, has no mid-block module",
            EMOWarning,
            stacklevel=3,
        )
    return modules
