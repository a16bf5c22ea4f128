"""The ``device`` settings of the data and VAE tools: ``"cpu"``, ``"cuda"`` or ``"auto"``."""

from __future__ import annotations

import torch

from emo.errors import ConfigError

__all__ = ["DEVICE_CHOICES", "check_device", "resolve_device"]

DEVICE_CHOICES = ("cpu", "cuda", "auto")


def check_device(owner: str, device: str) -> None:
    """Raise :class:`~emo.errors.ConfigError` naming ``owner`` unless ``device`` is a choice."""
    if device not in DEVICE_CHOICES:
        raise ConfigError(f"{owner} device must be 'cpu', 'cuda' or 'auto', got {device!r}")


def resolve_device(device: str, owner: str = "device") -> torch.device:
    """The torch device of a setting (``"auto"``: CUDA when torch sees a GPU).

    Raises
    ------
    ConfigError
        For an unknown name, or ``"cuda"`` where torch sees no CUDA device.
    """
    check_device(owner, device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{owner}: 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(device)
