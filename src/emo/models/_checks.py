"""Argument checks shared by the networks: config integers and input tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from emo.errors import ConfigError, InputError

__all__ = ["check_input_tensor", "positive_ints"]


def positive_ints(owner: str, **values: Any) -> None:
    """Raise :class:`ConfigError` unless each value is an int > 0 (or a sequence of them).

    ``None`` values are skipped (optional branches).
    """
    for name, value in values.items():
        if value is None:
            continue
        items: Sequence[Any] = value if isinstance(value, (list, tuple)) else [value]
        if not items or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in items):
            raise ConfigError(
                f"{owner}: {name} must be a positive int (or a list of them), got {value!r}"
            )


def check_input_tensor(
    owner: str, label: str, value: Any, *, like: torch.Tensor | None, layout: str
) -> torch.Tensor:
    """Check ``value`` is a real tensor on the device type of ``like``; return it.

    Raises
    ------
    InputError
        If it is not a tensor, is on the meta device (no data) while ``like`` is not,
        or lives on another device type than the model's weights ``like``.
    """
    if not isinstance(value, torch.Tensor):
        raise InputError(
            f"{owner}: {label} must be a torch.Tensor {layout}, got {type(value).__name__}"
        )
    if like is not None and value.device.type != like.device.type:
        raise InputError(
            f"{owner}: {label} is on {value.device} but the model is on {like.device}; move "
            f"it with .to({str(like.device)!r})"
        )
    return value
