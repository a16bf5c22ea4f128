"""How the denoiser runs on one or many processes: plain, DistributedDataParallel or FSDP.

Every engine offers the same few operations, so the loop does not branch on
the strategy: a forward call, ``no_sync`` for gradient accumulation, and
(collective) access to full parameters and optimizer state for checkpoints.
FSDP uses torch's ``fully_shard`` (FSDP2): each block of the ReferenceNet and the
Backbone is one shard unit, and it runs on CPUs (gloo) as well as on GPUs.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from emo.training.distributed import DistContext

__all__ = ["Engine", "make_engine"]


class Engine:
    """One process, or DDP: every process holds the full parameters."""

    strategy = "single"

    def __init__(self, module: nn.Module, wrapped: nn.Module | None = None) -> None:
        self.module = module
        self.wrapped = wrapped if wrapped is not None else module

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        out: torch.Tensor = self.wrapped(*args, **kwargs)
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip the gradient all-reduce (all micro-batches of an accumulation but the last)."""
        sync = getattr(self.wrapped, "no_sync", None)
        with sync() if callable(sync) else contextlib.nullcontext():
            yield

    def full_parameters(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """The named parameters, whole, on the CPU (collective under FSDP; rank 0 gets them)."""
        wanted = set(names)
        return {n: p.detach().cpu() for n, p in self.module.named_parameters() if n in wanted}

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer state to checkpoint (collective under FSDP)."""
        return optimizer.state_dict()

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Restore :meth:`optimizer_state`."""
        optimizer.load_state_dict(state)


class DDPEngine(Engine):
    """DistributedDataParallel: gradients averaged over the processes."""

    strategy = "ddp"


class FSDPEngine(Engine):
    """FSDP2 (``fully_shard``): parameters, gradients and optimizer state sharded."""

    strategy = "fsdp"

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.module.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            self.module.set_requires_gradient_sync(True)  # type: ignore[operator]

    def _options(self) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True)

    def full_parameters(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        wanted = set(names)
        state = get_model_state_dict(self.module, options=self._options())
        return {n: t for n, t in state.items() if n in wanted and isinstance(t, torch.Tensor)}

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state: dict[str, Any] = get_optimizer_state_dict(
            self.module, optimizer, options=self._options()
        )
        return state

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(
            self.module, optimizer, state, options=StateDictOptions(full_state_dict=True)
        )


def _shard_units(denoiser: nn.Module) -> list[nn.Module]:
    """The blocks sharded one by one (then the rest as one unit)."""
    units: list[nn.Module] = []
    for name in ("reference_net", "backbone"):
        net = getattr(denoiser, name)
        for part in ("down_blocks", "up_blocks"):
            units.extend(getattr(net, part, []))
        mid = getattr(net, "mid_block", None)
        if mid is not None:
            units.append(mid)
    return units


def make_engine(denoiser: nn.Module, ctx: DistContext, strategy: str, find_unused: bool) -> Engine:
    """Wrap the denoiser for this process group (call before building the optimizer).

    Parameters
    ----------
    denoiser
        The :class:`~emo.denoiser.EMODenoiser`, already on ``ctx.device``.
    ctx
        The process group.
    strategy
        ``"ddp"`` or ``"fsdp"`` (ignored for one process).
    find_unused
        DDP's ``find_unused_parameters``.
    """
    if not ctx.distributed:
        return Engine(denoiser)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # Our blocks return rearranged views and never modify them in place (the
        # results equal a one-process run), so torch's caution about views is noise.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")

        for unit in _shard_units(denoiser):
            fully_shard(unit)
        fully_shard(denoiser)
        return FSDPEngine(denoiser)
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(
        denoiser,
        device_ids=[ctx.device] if ctx.device.type == "cuda" else None,
        find_unused_parameters=find_unused,
    )
    return DDPEngine(denoiser, wrapped)
