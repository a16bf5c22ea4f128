"""Loading a model without building it twice: meta-device construction, then the weights assigned.

The plain way to load a checkpoint builds the network with its random
initialisation, then copies the checkpoint's tensors into it: the parameters
exist twice (peak memory twice the weights) and the random initialisation of
billions of values costs more than reading the file. Here the network is built
on the ``meta`` device (shapes only: no memory, no initialisation, no random
numbers drawn), and the checkpoint's tensors (see :mod:`emo._safetensors_io`)
*become* its parameters (``load_state_dict(assign=True)``): nothing is copied
and peak memory is the weights' size once.

What the checkpoint does not hold must still get values:

- non-persistent buffers (tables computed from the config, e.g. the speed
  layers' bucket centres) are rebuilt by the submodule's
  ``_init_non_persistent_buffers()``, which every emo module that has such
  buffers defines;
- anything else left on the meta device (a missing key loaded with
  ``strict=False``, a third-party module without that method) means the
  model cannot be loaded this way: the caller falls back to the plain way.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["INIT_BUFFERS", "assign_weights", "unmaterialised"]

#: Method a submodule defines to (re)compute its non-persistent buffers from its config.
INIT_BUFFERS = "_init_non_persistent_buffers"


def _target_dtype(own: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    """The dtype the plain load ends with: the model's own, or ``dtype`` for floating tensors."""
    if dtype is not None and own.is_floating_point():
        return dtype
    return own.dtype


def unmaterialised(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``model`` still on the meta device."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [name for name, tensor in tensors if tensor.is_meta]


def assign_weights(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    dtype: torch.dtype | None,
) -> bool:
    """Make ``state``'s tensors the parameters of the meta-device ``model``.

    Each tensor is converted to the dtype the plain load would give it (the
    model's own, or ``dtype`` for floating-point tensors) and assigned without a
    copy when it already has that dtype. Keys, shapes and the ``strict`` policy
    are the caller's to check beforehand.

    Parameters
    ----------
    model
        A network built on the meta device.
    state
        Checkpoint tensors by state-dict name (unknown names are ignored).
    dtype
        Floating-point dtype to end with; ``None`` keeps the model's.

    Returns
    -------
    bool
        True when every parameter and buffer now has a value; False when some
        are still on the meta device (the caller must load another way).
    """
    own = model.state_dict()
    converted = {
        key: value.to(dtype=_target_dtype(own[key], dtype))
        for key, value in state.items()
        if key in own
    }
    model.load_state_dict(converted, strict=False, assign=True)
    del converted
    for module in model.modules():
        left = [name for name, buf in module.named_buffers(recurse=False) if buf.is_meta]
        init = getattr(module, INIT_BUFFERS, None)
        if left and callable(init):
            init()
    return not unmaterialised(model)
