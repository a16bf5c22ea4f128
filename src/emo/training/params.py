"""Parameter groups of the denoiser, what trains in a stage, and the frozen-weights check."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from emo.errors import ConfigError, EMOError

__all__ = [
    "FrozenWeightsChanged",
    "apply_trainable",
    "fingerprint",
    "group_of",
    "group_sizes",
]


class FrozenWeightsChanged(EMOError):
    """A parameter that should be frozen changed during training (a bug, never expected)."""


def group_of(name: str) -> str:
    """The parameter group of a denoiser parameter (see :data:`~emo.training.settings.PARAMETER_GROUPS`).

    ``speed``: the speed encoder and the speed inputs of the temporal modules;
    ``audio``: the audio projection and the Backbone's audio attentions;
    ``temporal``: the rest of the temporal (motion) modules;
    ``reference_net``, ``face_locator``: those networks;
    ``backbone_spatial``: every other Backbone parameter (the SD 1.5 UNet).
    """
    if name.startswith("backbone.") and "speed" in name:
        return "speed"
    if name.startswith("audio_projection.") or (name.startswith("backbone.") and ".audio_" in name):
        return "audio"
    if name.startswith("backbone.") and "motion_modules" in name:
        return "temporal"
    for prefix in ("reference_net", "face_locator"):
        if name.startswith(prefix + "."):
            return prefix
    if name.startswith("backbone."):
        return "backbone_spatial"
    raise ConfigError(f"parameter {name!r} belongs to no parameter group")


def group_sizes(model: nn.Module) -> dict[str, int]:
    """Parameters per group."""
    sizes: dict[str, int] = {}
    for name, param in model.named_parameters():
        group = group_of(name)
        sizes[group] = sizes.get(group, 0) + param.numel()
    return sizes


def apply_trainable(model: nn.Module, groups: Iterable[str]) -> list[str]:
    """Set ``requires_grad`` by group; returns the names of the trained parameters.

    Raises
    ------
    ConfigError
        If a chosen group has no parameter in this model (e.g. ``speed`` in a
        Backbone built without speed layers).
    """
    chosen = set(groups)
    sizes = group_sizes(model)
    empty = sorted(g for g in chosen if not sizes.get(g))
    if empty:
        raise ConfigError(
            f"training.trainable names {empty}, but the model has no such parameters; "
            f"it has {sorted(sizes)}"
        )
    trained = []
    for name, param in model.named_parameters():
        train = group_of(name) in chosen
        param.requires_grad_(train)
        if train:
            trained.append(name)
    return trained


def fingerprint(parameters: Mapping[str, torch.Tensor], names: Iterable[str]) -> str:
    """SHA-256 over the exact bytes of the named tensors (to prove they did not change).

    ``parameters`` maps names to tensors (``dict(model.named_parameters())``); names
    are hashed in sorted order.
    """
    digest = hashlib.sha256()
    for name in sorted(set(names)):
        if name not in parameters:
            continue
        digest.update(name.encode())
        data = parameters[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()
