"""Load AnimateDiff motion-module weights into emo's temporal modules.

Two layouts of the same weights circulate:

* the **original** AnimateDiff checkpoints (``mm_sd_v15_v2.ckpt`` and friends)::

    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight
    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe
    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.norms.0.weight
    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.weight

* the **diffusers** ``MotionAdapter`` / ``UNetMotionModel`` layout::

    down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight
    down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe
    down_blocks.0.motion_modules.0.transformer_blocks.0.norm1.weight
    down_blocks.0.motion_modules.0.transformer_blocks.0.norm3.weight

emo's :class:`~emo.models.temporal.TemporalModule` uses the original names, so
:func:`convert_motion_module_state_dict` maps either layout to it (the layout is
detected from the keys). Any prefix before ``down_blocks``/``mid_block``/``up_blocks``
(``module.``, ``unet.``, ...) is dropped, and keys outside motion modules (e.g. the
spatial layers of a full UNet checkpoint) are ignored. A state dict of a *single*
module (keys starting with ``temporal_transformer.``, or ``norm.``/``proj_in.``/
``transformer_blocks.`` for diffusers) is converted too.

**Positional tables.** ``pe`` is a fixed sinusoid, not a learned weight, but its length differs between
releases (24 positions in v1, 32 in v2). When the checkpoint's table and the model's
differ in length and the checkpoint's table *is* the standard sinusoid, the model's
own table (recomputed, any length) is kept: that is exactly "truncate or extend with
the same sinusoid". A non-standard (e.g. learned) table of another length cannot be
extended and raises :class:`~emo.errors.CheckpointError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from emo.errors import CheckpointError
from emo.modeling import LoadReport, load_state_dict_file
from emo.models.temporal import sinusoidal_positions

__all__ = [
    "convert_motion_module_state_dict",
    "detect_motion_module_layout",
    "load_motion_module_weights",
    "motion_module_state_dict_to_diffusers",
    "resize_positional_table",
]

_MODULE_PREFIX = re.compile(
    r"(?:^|\.)((?:down_blocks|up_blocks)\.\d+\.motion_modules\.\d+|mid_block\.motion_modules\.\d+)"
    r"\.(.+)$"
)
_DIFFUSERS_BLOCK = re.compile(r"^transformer_blocks\.(\d+)\.([A-Za-z_]+\d*)\.(.+)$")
_DIFFUSERS_TO_ORIGINAL = {
    "norm1": "norms.0",
    "norm2": "norms.1",
    "norm3": "ff_norm",
    "attn1": "attention_blocks.0",
    "attn2": "attention_blocks.1",
    "ff": "ff",
}
_ORIGINAL_BLOCK = re.compile(
    r"^temporal_transformer\.transformer_blocks\.(\d+)\."
    r"(norms\.0|norms\.1|ff_norm|attention_blocks\.0|attention_blocks\.1|ff)\.(.+)$"
)
_ORIGINAL_TO_DIFFUSERS = {v: k for k, v in _DIFFUSERS_TO_ORIGINAL.items()}
#: Tensors EMO adds to a motion module (the speed cross-attention): no AnimateDiff counterpart.
_EMO_ONLY = re.compile(r"\.(speed_attention|speed_norm)\.")


def _split(key: str) -> tuple[str, str] | None:
    """``(canonical module prefix + '.', inner key)`` or None when not in a motion module."""
    match = _MODULE_PREFIX.search(key)
    if match is None:
        return None
    return match.group(1) + ".", match.group(2)


def _modules(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, str]]:
    """Map every motion-module key to ``(prefix, inner)``; a single-module dict gets prefix ''."""
    split = {k: s for k in state_dict if (s := _split(k)) is not None}
    if split:
        return split
    single_roots = (
        "temporal_transformer.",
        "norm.",
        "proj_in.",
        "proj_out.",
        "transformer_blocks.",
    )
    return {k: ("", k) for k in state_dict if k.startswith(single_roots)}


def detect_motion_module_layout(
    state_dict: Mapping[str, torch.Tensor],
) -> Literal["original", "diffusers"]:
    """Tell which motion-module layout a state dict uses.

    Parameters
    ----------
    state_dict
        Any state dict holding motion-module tensors.

    Returns
    -------
    str
        ``"original"`` (AnimateDiff, ``temporal_transformer.*``) or ``"diffusers"``.

    Raises
    ------
    CheckpointError
        If no motion-module tensors are found or both layouts are mixed.
    """
    modules = _modules(state_dict)
    if not modules:
        raise CheckpointError(
            "no AnimateDiff motion-module tensors found (expected keys like "
            "'down_blocks.0.motion_modules.0.temporal_transformer...' or "
            "'down_blocks.0.motion_modules.0.transformer_blocks...'); is this a motion-module file?"
        )
    original = {inner.startswith("temporal_transformer.") for _, inner in modules.values()}
    if len(original) > 1:
        raise CheckpointError(
            "the state dict mixes the original AnimateDiff layout (temporal_transformer.*) and "
            "the diffusers layout; convert one checkpoint at a time"
        )
    return "original" if original.pop() else "diffusers"


def resize_positional_table(pe: torch.Tensor, length: int, *, name: str = "pe") -> torch.Tensor:
    """Return a ``(1, length, c)`` positional table from a checkpoint's ``(1, l, c)`` table.

    Same length: returned unchanged. Other length: the table must be the standard
    sinusoid (see :func:`~emo.models.temporal.sinusoidal_positions`) on its first
    ``min(l, length)`` rows, and the recomputed sinusoid of the new length is returned.

    Parameters
    ----------
    pe
        The checkpoint's table, shape ``(1, l, c)``.
    length
        Wanted number of positions.
    name
        Key name used in error messages.

    Returns
    -------
    torch.Tensor
        Shape ``(1, length, c)``, dtype of ``pe``.

    Raises
    ------
    CheckpointError
        If ``pe`` is not ``(1, l, c)`` or is a non-standard table of another length.
    """
    if pe.ndim != 3 or pe.shape[0] != 1:
        raise CheckpointError(
            f"{name}: positional table must be (1, positions, channels), got {tuple(pe.shape)}"
        )
    if pe.shape[1] == length:
        return pe
    standard = sinusoidal_positions(max(pe.shape[1], length), pe.shape[2])
    overlap = min(pe.shape[1], length)
    if not torch.allclose(pe[:, :overlap].float(), standard[:, :overlap], atol=1e-3):
        raise CheckpointError(
            f"{name}: the checkpoint's positional table has {pe.shape[1]} positions, the model "
            f"{length}, and it is not the standard sinusoid, so it cannot be resized; build "
            f"the temporal modules with max_positions={pe.shape[1]}"
        )
    return standard[:, :length].to(pe.dtype)


def convert_motion_module_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, max_positions: int | None = None
) -> dict[str, torch.Tensor]:
    """Convert AnimateDiff motion-module weights (either layout) to emo's names.

    Parameters
    ----------
    state_dict
        Original AnimateDiff or diffusers ``MotionAdapter``/``UNetMotionModel`` tensors,
        with any wrapper prefix; keys outside motion modules are dropped.
    max_positions
        If given, every positional table is resized to this many positions with
        :func:`resize_positional_table`; otherwise tables keep their length.

    Returns
    -------
    dict[str, torch.Tensor]
        Keys ``{down_blocks.i|mid_block|up_blocks.i}.motion_modules.j.temporal_transformer...``
        (or ``temporal_transformer...`` for a single module). The diffusers table
        ``transformer_blocks.k.pos_embed.pe`` becomes
        ``...attention_blocks.{0,1}.pos_encoder.pe`` (one per attention, as in the
        original). Tensors are shared, not copied.

    Raises
    ------
    CheckpointError
        If no motion-module tensors are found, layouts are mixed, or a table cannot
        be resized.
    """
    layout = detect_motion_module_layout(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, (prefix, inner) in _modules(state_dict).items():
        value = state_dict[key]
        if layout == "original":
            out[prefix + inner] = value
            continue
        match = _DIFFUSERS_BLOCK.match(inner)
        if match is None:
            out[prefix + "temporal_transformer." + inner] = value
            continue
        k, part, rest = match.groups()
        base = f"{prefix}temporal_transformer.transformer_blocks.{k}."
        if part == "pos_embed":
            for a in (0, 1):
                out[f"{base}attention_blocks.{a}.pos_encoder.{rest}"] = value
        else:
            out[base + _DIFFUSERS_TO_ORIGINAL.get(part, part) + "." + rest] = value
    if max_positions is not None:
        for key in out:
            if key.endswith("pos_encoder.pe"):
                out[key] = resize_positional_table(out[key], max_positions, name=key)
    return out


def motion_module_state_dict_to_diffusers(
    state_dict: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Convert emo / original AnimateDiff motion-module weights to the diffusers layout.

    The inverse of :func:`convert_motion_module_state_dict` for the diffusers
    ``MotionAdapter`` (``transformer_blocks.k.{attn1,attn2,norm1,norm2,norm3,ff,pos_embed}``).
    The table of ``attention_blocks.0`` becomes ``pos_embed.pe`` (diffusers keeps one
    per block); emo-only tensors (``speed_attention``, ``speed_norm``) have no diffusers counterpart and are
    left out.

    Parameters
    ----------
    state_dict
        Tensors in the original/emo layout (e.g. ``backbone.state_dict()``; keys
        outside motion modules are dropped).

    Returns
    -------
    dict[str, torch.Tensor]
        diffusers-layout tensors (shared, not copied).

    Raises
    ------
    CheckpointError
        If the input is not in the original layout.
    """
    if detect_motion_module_layout(state_dict) != "original":
        raise CheckpointError("motion_module_state_dict_to_diffusers needs the original layout")
    out: dict[str, torch.Tensor] = {}
    for key, (prefix, inner) in _modules(state_dict).items():
        if _EMO_ONLY.search(inner):
            continue
        value = state_dict[key]
        match = _ORIGINAL_BLOCK.match(inner)
        if match is None:
            out[prefix + inner.removeprefix("temporal_transformer.")] = value
            continue
        k, part, rest = match.groups()
        base = f"{prefix}transformer_blocks.{k}."
        if part.startswith("attention_blocks.") and rest.startswith("pos_encoder."):
            if part == "attention_blocks.0":
                out[base + "pos_embed." + rest.removeprefix("pos_encoder.")] = value
            continue
        out[base + _ORIGINAL_TO_DIFFUSERS[part] + "." + rest] = value
    return out


def load_motion_module_weights(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    *,
    strict: bool = False,
) -> LoadReport:
    """Load AnimateDiff motion-module weights into every motion module of ``model``.

    ``model`` is any module whose temporal modules live under
    ``{down_blocks.i|mid_block|up_blocks.i}.motion_modules.j`` (e.g. the Backbone, at
    any depth of nesting), or a single :class:`~emo.models.temporal.TemporalModule`.
    Other parameters are not touched and not reported.

    Parameters
    ----------
    model
        The receiving module.
    source
        A ``.safetensors``/``.ckpt``/``.pth``/``.bin`` file (read with
        :func:`emo.modeling.load_state_dict_file`) or a state dict, in the original
        AnimateDiff or the diffusers layout.
    strict
        Raise :class:`~emo.errors.CheckpointError` when motion-module keys are missing
        or unexpected. Missing emo-only keys (the speed cross-attention ``speed_attention`` and
        ``speed_norm``, new in EMO) never count.

    Returns
    -------
    LoadReport
        Motion-module keys of the model the checkpoint lacked (e.g. ``speed_attention``,
        kept at their zero initialisation) and checkpoint keys with no place in the model
        (e.g. a deeper UNet's blocks), with the model's names.

    Raises
    ------
    CheckpointError
        If the file cannot be read, holds no motion-module tensors, a shape differs, a
        positional table cannot be resized, or (``strict``) keys do not match.
    """
    if isinstance(source, Mapping):
        state = dict(source)
        origin = "the given state dict"
    else:
        state = load_state_dict_file(source)
        origin = repr(os.fspath(Path(source)))
    converted = convert_motion_module_state_dict(state)

    own = model.state_dict()
    canonical: dict[str, str] = {}
    for key, (prefix, inner) in _modules(own).items():
        if inner.startswith("temporal_transformer."):
            if prefix + inner in canonical:
                raise CheckpointError(
                    f"{type(model).__name__} holds several motion modules named "
                    f"'{prefix + inner}' ({canonical[prefix + inner]!r}, {key!r}); load into "
                    "the submodule that owns the motion modules"
                )
            canonical[prefix + inner] = key
    if not canonical:
        raise CheckpointError(
            f"{type(model).__name__} has no motion modules (no '*.motion_modules.*."
            "temporal_transformer.*' parameters) to load AnimateDiff weights into"
        )

    to_copy: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for key, value in converted.items():
        target = canonical.get(key)
        if target is None:
            continue
        expected = tuple(own[target].shape)
        if (
            key.endswith("pos_encoder.pe")
            and value.ndim == 3
            and value.shape[2:] == own[target].shape[2:]
        ):
            value = resize_positional_table(value, own[target].shape[1], name=f"{origin}: {key}")
        if tuple(value.shape) != expected:
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {expected}")
            continue
        to_copy[target] = value
    if mismatched:
        raise CheckpointError(
            f"{origin}: {len(mismatched)} motion-module tensors do not fit {type(model).__name__} "
            f"(another channel layout, e.g. an SDXL motion module?): {'; '.join(mismatched[:10])}"
        )
    if not to_copy:
        raise CheckpointError(
            f"{origin}: none of its {len(converted)} motion-module tensors has a place in "
            f"{type(model).__name__} (e.g. {next(iter(converted))!r} vs the model's "
            f"{next(iter(canonical))!r}); load a single-module dict into a single module"
        )
    report = LoadReport(
        missing_keys=tuple(k for c, k in canonical.items() if c not in converted),
        unexpected_keys=tuple(k for k in converted if k not in canonical),
    )
    hard_missing = [k for k in report.missing_keys if not _EMO_ONLY.search(k)]
    if strict and (hard_missing or report.unexpected_keys):
        raise CheckpointError(
            f"{origin}: motion modules do not match {type(model).__name__}: {report.describe()}; "
            "pass strict=False to load what fits"
        )
    with torch.no_grad():
        for target, value in to_copy.items():
            own[target].copy_(value)
    return report
