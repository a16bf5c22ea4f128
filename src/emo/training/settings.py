"""The settings of one training stage (one JSON config file per stage).

A config file is a JSON object with the sections below; every key is optional
except ``stage``, ``data.root`` and ``output_dir``. Unknown keys and wrong types
are refused with a :class:`~emo.errors.ConfigError` naming the key. See
``examples/training/stage1.json`` .. ``stage3.json`` and the training guide.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, get_args

from emo._deprecation import warn_renamed
from emo.errors import ConfigError
from emo.training.schema import from_dict, to_dict

__all__ = [
    "LEARNING_RATE_SCHEDULES",
    "PARAMETER_GROUPS",
    "STAGE_TRAINABLE",
    "CheckpointSettings",
    "DataSettings",
    "DistributedSettings",
    "DropoutSettings",
    "LearningRateSchedule",
    "LoggingSettings",
    "LossSettings",
    "ModelSettings",
    "NoiseSettings",
    "OptimizerSettings",
    "TrainSettings",
    "TrainingConfig",
    "ValidationSettings",
    "load_config",
]

#: How the learning rate moves after the warm-up (:attr:`OptimizerSettings.schedule`).
LearningRateSchedule = Literal["constant", "cosine"]
#: The names :data:`LearningRateSchedule` admits, for command lines and messages.
LEARNING_RATE_SCHEDULES: tuple[str, ...] = get_args(LearningRateSchedule)

#: Every parameter group a stage may train (see :mod:`emo.training.params`).
PARAMETER_GROUPS = (
    "backbone_spatial",
    "reference_net",
    "face_locator",
    "temporal",
    "audio",
    "speed",
)
#: What each stage trains by default (the paper's choice).
STAGE_TRAINABLE: dict[int, tuple[str, ...]] = {
    1: ("backbone_spatial", "reference_net", "face_locator"),
    2: ("temporal", "audio"),
    3: ("temporal", "speed"),
}


def _positive(owner: str, **values: float | int | None) -> None:
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{owner}.{name} must be > 0, got {value!r}")


def _probability(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{owner}.{name} must lie in [0, 1], got {value!r}")


@dataclass(frozen=True)
class ModelSettings:
    """Where the networks come from, and their shape.

    Attributes
    ----------
    init_from
        A pipeline folder (``EMOPipeline.save_pretrained``; the previous stage's
        ``output_dir/pipeline``). When set, ``preset`` and the overrides are ignored.
    preset
        Model preset for a fresh model (``"tiny"``, ``"sd15"``).
    sd15, wav2vec2
        Pretrained parts for a full-size start (``EMOPipeline.from_pretrained_parts``).
    motion_module
        AnimateDiff motion-module weights loaded into the temporal modules (stage 2).
    audio_encoder
        Audio-encoder plugin name for a fresh model; default: the one the data was
        prepared with (they must match).
    unet, backbone, vae, face_locator, audio_projection
        Config values replacing the preset's (``unet`` applies to ReferenceNet and
        Backbone alike): e.g. ``{"block_out_channels": [32, 64]}``, or a VAE with
        fewer levels (``vae.block_out_channels`` of length 3 downsamples 4x).
    """

    init_from: str | None = None
    preset: str = "tiny"
    sd15: str | None = None
    wav2vec2: str | None = None
    motion_module: str | None = None
    audio_encoder: str | None = None
    unet: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] = field(default_factory=dict)
    vae: dict[str, Any] = field(default_factory=dict)
    face_locator: dict[str, Any] = field(default_factory=dict)
    audio_projection: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.sd15 is None) != (self.wav2vec2 is None):
            raise ConfigError("model.sd15 and model.wav2vec2 go together; give both or neither")


@dataclass(frozen=True)
class DataSettings:
    """The prepared data set (``emo prepare``) and how samples are cut from it.

    Attributes
    ----------
    root
        The folder ``emo prepare`` wrote.
    frames_per_clip
        Frames ``f`` denoised per sample; default 1 in stage 1, the model's clip length otherwise.
        (Configs that say ``num_frames``, its old name, still load, with a warning.)
    motion_frames
        Motion frames ``n`` before the target frames (stages 2 and 3); default the model's.
    zero_motion_probability
        Share of samples whose motion frames are replaced by the "no motion" input, so
        the model learns the first clip of a video (which has no previous frames).
    min_reference_distance
        Stage 1: fewest frames between the reference and the target frame.
    motion_noise
        Largest standard deviation of the Gaussian noise added to the motion-frame
        latents (stages 2-3; each sample draws its own uniformly in ``[0, motion_noise]``).
        At inference the motion frames are the model's own, imperfect, previous frames;
        noised motion frames in training teach it not to copy their errors, which
        otherwise pile up from clip to clip. 0 (the default): clean motion frames.
    """

    root: str
    frames_per_clip: int | None = None
    motion_frames: int | None = None
    zero_motion_probability: float = 0.1
    min_reference_distance: int = 1
    motion_noise: float = 0.0

    #: Old key -> new key; :func:`~emo.training.schema.from_dict` reads old configs.
    renamed_keys: ClassVar[Mapping[str, str]] = MappingProxyType({"num_frames": "frames_per_clip"})

    @property
    def num_frames(self) -> int | None:
        """Deprecated name of :attr:`frames_per_clip`."""
        warn_renamed("num_frames", "frames_per_clip", where="data")
        return self.frames_per_clip

    def __post_init__(self) -> None:
        _positive("data", frames_per_clip=self.frames_per_clip)
        if self.motion_frames is not None and self.motion_frames < 0:
            raise ConfigError(f"data.motion_frames must be >= 0, got {self.motion_frames}")
        if self.min_reference_distance < 0:
            raise ConfigError("data.min_reference_distance must be >= 0")
        _probability("data", zero_motion_probability=self.zero_motion_probability)
        if not (math.isfinite(self.motion_noise) and self.motion_noise >= 0):
            raise ConfigError(f"data.motion_noise must be a number >= 0, got {self.motion_noise}")


@dataclass(frozen=True)
class NoiseSettings:
    """The diffusion process the network learns (saved with the model for inference).

    Attributes
    ----------
    scheduler
        Scheduler plugin used at inference (and for the training tables).
    prediction_type
        Training target: ``"epsilon"`` (noise, SD 1.5) or ``"v_prediction"``.
    zero_snr
        Rescale the betas to zero terminal SNR (then ``v_prediction`` and
        ``"trailing"`` timestep spacing are the sensible companions).
    timestep_spacing
        Inference timestep spacing saved with the scheduler.
    """

    scheduler: str = "ddim"
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    zero_snr: bool = False
    timestep_spacing: Literal["leading", "trailing", "linspace"] = "leading"


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW and the learning-rate schedule.

    Attributes
    ----------
    learning_rate
        Peak learning rate (1e-5 in the paper).
    betas, eps, weight_decay
        AdamW settings.
    max_grad_norm
        Clip the gradient norm to this; ``null`` never clips.
    warmup_steps
        Linear warm-up from 0 over this many optimizer steps.
    schedule
        ``"constant"`` after warm-up, or ``"cosine"`` decay to 0 at ``training.max_steps``.
    """

    learning_rate: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    max_grad_norm: float | None = 1.0
    warmup_steps: int = 0
    schedule: LearningRateSchedule = "constant"

    def __post_init__(self) -> None:
        _positive("optimizer", learning_rate=self.learning_rate, eps=self.eps)
        _positive("optimizer", max_grad_norm=self.max_grad_norm)
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("optimizer.weight_decay and optimizer.warmup_steps must be >= 0")


@dataclass(frozen=True)
class LossSettings:
    """How the per-element squared error is weighted.

    Attributes
    ----------
    change_weight
        Extra weight of the latent pixels that differ from the reference: each element
        of a sample weighs ``1 + change_weight * d / mean(d)``, with ``d`` the absolute
        difference between the target latent and the reference latent (mean over
        channels), and the loss is divided by the mean weight. The mouth, the eyes and
        a turning head are a small part of a talking-head frame but all of what the
        audio and the speed layers must learn; 0 (the default) is the plain mean.
    mouth_weight
        Extra weight of the latent pixels inside each target frame's mouth box (the lip
        landmarks' box grown 1.5 times, :mod:`emo.training.mouth`): they weigh
        ``1 + mouth_weight`` (by the share of the pixel inside), added to the change
        weight. Unlike ``change_weight`` it does not reward turning the head away. The
        data needs mouth boxes (``emo prepare`` with ``emo[face]``, or
        ``emo mouth-boxes DATA_DIR``); clips without weigh 1. 0 (the default): none.
    """

    change_weight: float = 0.0
    mouth_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("change_weight", "mouth_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"loss.{name} must be a number >= 0, got {value}")


@dataclass(frozen=True)
class DropoutSettings:
    """Condition dropout (what classifier-free guidance needs at inference).

    A sample loses its reference with probability ``reference``, its audio with
    ``audio``, both with ``both`` (exclusive events). The dropped inputs are exactly
    the "no reference" / "no audio" inputs of the guidance branches
    (:class:`emo.denoiser.EMODenoiser`).
    """

    reference: float = 0.05
    audio: float = 0.05
    both: float = 0.05

    def __post_init__(self) -> None:
        _probability("dropout", reference=self.reference, audio=self.audio, both=self.both)
        if self.reference + self.audio + self.both > 1.0:
            raise ConfigError("dropout.reference + dropout.audio + dropout.both must be <= 1")


@dataclass(frozen=True)
class TrainSettings:
    """The loop.

    Attributes
    ----------
    max_steps
        Optimizer steps of the run.
    batch_size
        Samples per process per micro-batch (global batch = batch_size x processes x
        gradient_accumulation).
    gradient_accumulation
        Micro-batches per optimizer step.
    trainable
        Parameter groups that learn (:data:`PARAMETER_GROUPS`); default: the stage's
        (:data:`STAGE_TRAINABLE`). Every other parameter is frozen and checked unchanged.
    mixed_precision
        ``"no"``, ``"bf16"`` or ``"fp16"`` autocast (fp16 with a gradient scaler).
    gradient_checkpointing
        Recompute activations in the backward pass (less memory, ~30 % slower).
    ema_decay
        Keep an exponential moving average of the trained weights with this decay
        (e.g. 0.999); ``null`` keeps none. The saved model uses the EMA weights.
    device
        ``"auto"`` (the local GPU when there is one), ``"cpu"`` or ``"cuda"``.
    threads
        CPU threads per process (``torch.set_num_threads``); ``null`` leaves torch's default.
    """

    max_steps: int = 1000
    batch_size: int = 1
    gradient_accumulation: int = 1
    trainable: tuple[str, ...] | None = None
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    ema_decay: float | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        _positive(
            "training",
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            gradient_accumulation=self.gradient_accumulation,
            threads=self.threads,
        )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"training.ema_decay must lie in (0, 1), got {self.ema_decay}")
        for group in self.trainable or ():
            if group not in PARAMETER_GROUPS:
                raise ConfigError(
                    f"training.trainable: unknown parameter group {group!r}; "
                    f"choose from {list(PARAMETER_GROUPS)}"
                )


@dataclass(frozen=True)
class CheckpointSettings:
    """Checkpoints for exact resume.

    Attributes
    ----------
    every
        Save a checkpoint every this many optimizer steps (and at the end).
    keep
        Keep the newest ``keep`` checkpoints (older ones are deleted).
    resume
        ``"auto"``: continue from the newest valid checkpoint in ``output_dir`` if
        any; ``"never"``: refuse to run over existing checkpoints.
    """

    every: int = 500
    keep: int = 3
    resume: Literal["auto", "never"] = "auto"

    def __post_init__(self) -> None:
        _positive("checkpoints", every=self.every, keep=self.keep)


@dataclass(frozen=True)
class ValidationSettings:
    """Validation clips written as MP4 during training.

    Attributes
    ----------
    every
        Write one every this many optimizer steps; ``null`` never (one is still written
        at the end when ``at_end`` is true).
    at_end
        Write one after the last step.
    num_inference_steps
        Denoising steps of the validation clip.
    seconds
        Length of the validation clip (from the first prepared clip's audio).
    """

    every: int | None = None
    at_end: bool = True
    num_inference_steps: int = 20
    seconds: float = 1.0

    def __post_init__(self) -> None:
        _positive(
            "validation",
            every=self.every,
            num_inference_steps=self.num_inference_steps,
            seconds=self.seconds,
        )


@dataclass(frozen=True)
class LoggingSettings:
    """Metrics and the progress bar.

    Attributes
    ----------
    every
        Log the averaged loss every this many optimizer steps (JSONL, TensorBoard).
    progress_bar
        Show a tqdm bar on rank 0.
    tensorboard
        Also write TensorBoard events when the ``tensorboard`` package is installed.
    """

    every: int = 10
    progress_bar: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        _positive("logging", every=self.every)


@dataclass(frozen=True)
class DistributedSettings:
    """Many processes (under ``torchrun``).

    Attributes
    ----------
    strategy
        ``"ddp"`` (DistributedDataParallel) or ``"fsdp"`` (FullyShardedDataParallel, for
        the full-size model on many GPUs).
    backend
        Process-group backend; ``"auto"``: NCCL on GPUs, gloo on CPUs.
    find_unused_parameters
        DDP option, needed when some trained parameters get no gradient (stage 1: the
        ReferenceNet layers after its last reference feature); ``null``: true in stage 1
        only (the check costs a graph traversal per step).
    """

    strategy: Literal["ddp", "fsdp"] = "ddp"
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    find_unused_parameters: bool | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """One stage's whole configuration (the JSON config file).

    Attributes
    ----------
    stage
        1 (images), 2 (video: temporal + audio), 3 (speed).
    output_dir
        Checkpoints, metrics, validation clips and the final pipeline (``pipeline/``).
    seed
        Seed of every random choice (data order, noise, timesteps, dropout).
    """

    stage: Literal[1, 2, 3]
    output_dir: str
    data: DataSettings
    seed: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    dropout: DropoutSettings = field(default_factory=DropoutSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    training: TrainSettings = field(default_factory=TrainSettings)
    checkpoints: CheckpointSettings = field(default_factory=CheckpointSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    distributed: DistributedSettings = field(default_factory=DistributedSettings)

    @property
    def trainable(self) -> tuple[str, ...]:
        """The parameter groups that learn in this run."""
        chosen = self.training.trainable
        return tuple(chosen) if chosen is not None else STAGE_TRAINABLE[self.stage]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready config."""
        data: dict[str, Any] = to_dict(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Validate a parsed config; see :func:`emo.training.schema.from_dict`."""
        return from_dict(cls, data)


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def load_config(
    path: str | os.PathLike[str] | dict[str, Any], overrides: dict[str, Any] | None = None
) -> TrainingConfig:
    """Read and validate a stage config file.

    Parameters
    ----------
    path
        A JSON file (or an already parsed dict).
    overrides
        ``{"training.max_steps": 10, ...}``: dotted keys replacing values of the file
        (what ``emo train CONFIG --set KEY=VALUE`` passes).

    Raises
    ------
    ConfigError
        If the file is missing or not JSON, or a key or value is invalid.
    """
    if isinstance(path, dict):
        data = json.loads(json.dumps(path))
        label = "config"
    else:
        file = Path(path)
        label = os.fspath(file)
        if not file.is_file():
            raise ConfigError(f"training config {label!r} does not exist")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"training config {label!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"training config {label!r} must hold a JSON object")
    for key, value in (overrides or {}).items():
        _set_path(data, key, value)
    try:
        return TrainingConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
