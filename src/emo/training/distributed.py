"""Process groups under ``torchrun``: rank, world size, device, and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

__all__ = ["DistContext", "init_distributed"]


@dataclass
class DistContext:
    """Where this process stands.

    Attributes
    ----------
    rank, world_size, local_rank
        From torchrun's environment (0, 1, 0 for a plain process).
    device
        The device this process trains on.
    initialised
        Whether this call created the process group (and must destroy it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op for one process)."""
        if self.distributed:
            torch.distributed.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over the processes."""
        if not self.distributed:
            return value
        total = value.detach().clone().to(self.device)
        torch.distributed.all_reduce(total)
        return total / self.world_size

    def gather_strings(self, text: str) -> list[str]:
        """Every process's ``text``, in rank order."""
        if not self.distributed:
            return [text]
        out: list[object] = [None] * self.world_size
        torch.distributed.all_gather_object(out, text)
        return [str(v) for v in out]

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.initialised and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device: str, backend: str, *, timeout: timedelta | None = None) -> DistContext:
    """Join torchrun's process group when there is one; pick the device.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    backend
        ``"auto"`` (NCCL on GPUs, gloo on CPUs), ``"nccl"`` or ``"gloo"``.
    timeout
        How long a collective (a barrier) waits for the other processes; ``None``:
        torch's default (10 minutes for NCCL, 30 for gloo).
    """
    from emo.errors import ConfigError

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(
            "training.device is 'cuda' but torch sees no CUDA GPU; use 'cpu' or 'auto'"
        )
    dev = (
        torch.device("cuda", local % max(1, torch.cuda.device_count()))
        if use_cuda
        else torch.device("cpu")
    )
    if use_cuda:
        torch.cuda.set_device(dev)
    created = False
    if world > 1 and not torch.distributed.is_initialized():
        chosen = backend if backend != "auto" else ("nccl" if use_cuda else "gloo")
        if timeout is None:
            torch.distributed.init_process_group(backend=chosen)
        else:
            torch.distributed.init_process_group(backend=chosen, timeout=timeout)
        created = True
    return DistContext(
        rank=rank, world_size=world, local_rank=local, device=dev, initialised=created
    )
