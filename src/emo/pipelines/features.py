"""Batch manipulation of ReferenceNet feature sets (reference and motion features)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["map_features"]

_F = TypeVar("_F")


def map_features(features: _F, fn: Callable[[torch.Tensor], torch.Tensor]) -> _F:
    """Apply ``fn`` to every tensor of a ReferenceNet feature set, returning a new one.

    The feature set is a dataclass whose fields are ``dict[str, Tensor]`` (one tensor
    per layer); any other field is kept as is.
    """
    if not dataclasses.is_dataclass(features) or isinstance(features, type):
        raise TypeError(f"expected a ReferenceNet feature dataclass, got {type(features).__name__}")
    changes = {}
    for field in dataclasses.fields(features):
        value = getattr(features, field.name)
        if isinstance(value, dict):
            changes[field.name] = {
                k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in value.items()
            }
    return dataclasses.replace(features, **changes)
