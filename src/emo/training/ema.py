"""Exponential moving average of the trained weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["EMAWeights"]


class EMAWeights:
    """``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Parameters
    ----------
    model
        The model (its named parameters).
    names
        The trained parameters to average (frozen ones never change, so they need none).
    decay
        Averaging decay, e.g. 0.999.
    """

    def __init__(self, model: nn.Module, names: Iterable[str], decay: float) -> None:
        self.decay = decay
        wanted = set(names)
        self.shadow = {
            name: param.detach().float().clone()
            for name, param in model.named_parameters()
            if name in wanted
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights into the average."""
        for name, param in model.named_parameters():
            avg = self.shadow.get(name)
            if avg is not None:
                avg.lerp_(param.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights into ``model``."""
        for name, param in model.named_parameters():
            avg = self.shadow.get(name)
            if avg is not None:
                param.copy_(avg.to(param.dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averages by parameter name (``ema.`` is not prefixed)."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore averages saved by :meth:`state_dict`."""
        for name in self.shadow:
            self.shadow[name] = state[name].float().clone()
