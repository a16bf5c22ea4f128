"""Convert an original single-file Stable Diffusion 1.x checkpoint to the diffusers layout.

The checkpoints that CompVis, RunwayML and most fine-tuners publish as one
``.ckpt`` or ``.safetensors`` file use the LDM naming of the original
``ldm`` code base: the UNet under ``model.diffusion_model.`` (``input_blocks``,
``middle_block``, ``output_blocks``) and the VAE under ``first_stage_model.``
(``encoder.down.0.block.0``, ``mid.attn_1``, ...). emo's networks use the
diffusers parameter names (``down_blocks.0.resnets.0``, ...). This module maps
between the two layouts in both directions:

- :func:`convert_ldm_unet_state_dict` / :func:`convert_ldm_vae_state_dict`:
  LDM -> diffusers;
- :func:`to_ldm_unet_state_dict` / :func:`to_ldm_vae_state_dict`: the inverse;
- :func:`load_sd15_single_file`: read a file and return configs and converted
  state dicts for the UNet and the VAE.

The mapping is pure renaming, except the VAE mid-block attention projections,
which the LDM layout stores as 1x1 convolutions ``(c, c, 1, 1)`` and diffusers
as linear layers ``(c, c)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from emo.errors import CheckpointError
from emo.loaders.diffusers_vae import build_vae
from emo.modeling import load_state_dict_file
from emo.models.sd15 import sd15_unet_config, sd15_vae_config

__all__ = [
    "LDM_UNET_PREFIX",
    "LDM_VAE_PREFIXES",
    "SD15_VAE_CONFIG",
    "convert_ldm_unet_state_dict",
    "convert_ldm_vae_state_dict",
    "load_ldm_vae_single_file",
    "load_sd15_single_file",
    "load_single_file_vae",
    "sd15_unet_config",
    "to_ldm_unet_state_dict",
    "to_ldm_vae_state_dict",
]

if TYPE_CHECKING:
    from emo.models.vae import AutoencoderKL

_V = TypeVar("_V", bound="AutoencoderKL")

#: Prefix of the UNet tensors in a single-file checkpoint.
LDM_UNET_PREFIX = "model.diffusion_model."
#: Prefixes the VAE tensors may carry in a single-file checkpoint.
LDM_VAE_PREFIXES = ("first_stage_model.", "vae.")
_EMA_PREFIX = "model_ema."

#: The Stable Diffusion 1.x VAE config in JSON form (lists), as this importer returns it;
#: derived from :data:`emo.models.sd15.SD15_VAE_CONFIG`.
SD15_VAE_CONFIG: dict[str, Any] = sd15_vae_config()

# --------------------------------------------------------------------------------------
# UNet
# --------------------------------------------------------------------------------------

# LDM ResBlock sub-module names <-> diffusers ResnetBlock2D names.
_UNET_RESNET_LDM_TO_DIFFUSERS = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
_UNET_RESNET_DIFFUSERS_TO_LDM = {v: k for k, v in _UNET_RESNET_LDM_TO_DIFFUSERS.items()}

# Top-level modules that are renamed as a whole.
_UNET_TOP_LDM_TO_DIFFUSERS = {
    "time_embed.0": "time_embedding.linear_1",
    "time_embed.2": "time_embedding.linear_2",
    "input_blocks.0.0": "conv_in",
    "out.0": "conv_norm_out",
    "out.2": "conv_out",
}
_UNET_TOP_DIFFUSERS_TO_LDM = {v: k for k, v in _UNET_TOP_LDM_TO_DIFFUSERS.items()}

_RE_INPUT = re.compile(r"^input_blocks\.(\d+)\.(\d+)\.(.+)$")
_RE_MIDDLE = re.compile(r"^middle_block\.(\d+)\.(.+)$")
_RE_OUTPUT = re.compile(r"^output_blocks\.(\d+)\.(\d+)\.(.+)$")
_RE_TOP = re.compile(r"^(time_embed\.[02]|input_blocks\.0\.0|out\.[02])\.(weight|bias)$")


def _rename_resnet(prefix: str, rest: str, table: Mapping[str, str]) -> str | None:
    """``prefix`` + ``rest`` with its resnet sub-module renamed; ``None`` if it is not one."""
    for old, new in table.items():
        if rest.startswith(old + "."):
            return prefix + new + rest[len(old) :]
    return None


def _strip_prefix(
    state_dict: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Keep the tensors under the first prefix present, without it; no prefix: all of them."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return dict(state_dict)


def _ema_unet_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The EMA copy of the UNet: ``model_ema.<key without dots>`` for every UNet key."""
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key in state_dict:
        if key.startswith(LDM_UNET_PREFIX):
            flat = _EMA_PREFIX + "".join(key.split(".")[1:])
            if flat in state_dict:
                out[key[len(LDM_UNET_PREFIX) :]] = state_dict[flat]
            else:
                missing.append(flat)
    if missing:
        raise CheckpointError(
            f"extract_ema=True but {len(missing)} EMA tensors are missing (e.g. {missing[0]!r}); "
            "pass extract_ema=False to use the regular weights"
        )
    return out


def _infer_layers_per_block(ldm_keys: list[str]) -> int:
    """``layers_per_block`` from the index of the first downsampler (``input_blocks.N.0.op``)."""
    ops = sorted(
        int(m.group(1))
        for k in ldm_keys
        if (m := _RE_INPUT.match(k)) is not None and m.group(3).startswith("op.")
    )
    if not ops:
        raise CheckpointError(
            "cannot infer layers_per_block: the UNet has no downsampler "
            "(input_blocks.N.0.op); pass unet_config={'layers_per_block': ...}"
        )
    return ops[0] - 1


def convert_ldm_unet_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    unet_config: Mapping[str, Any] | None = None,
    *,
    extract_ema: bool = False,
) -> dict[str, torch.Tensor]:
    """Rename an LDM-layout Stable Diffusion 1.x UNet state dict to the diffusers layout.

    Parameters
    ----------
    state_dict
        A whole single-file checkpoint (UNet keys under ``model.diffusion_model.``;
        other keys are ignored) or just the UNet tensors without that prefix.
    unet_config
        A mapping with ``layers_per_block`` (diffusers config terms). ``None``
        infers it from the position of the first downsampler.
    extract_ema
        Take the EMA weights (``model_ema.*``) instead of the regular ones.

    Returns
    -------
    dict[str, torch.Tensor]
        ``{"conv_in.weight": ..., "down_blocks.0.resnets.0.norm1.weight": ..., ...}``;
        the tensors are the input's (not copied).

    Raises
    ------
    CheckpointError
        If a UNet key has no place in the SD 1.x layout, or EMA weights are
        asked for and absent.
    """
    if extract_ema:
        unet = _ema_unet_state_dict(state_dict)
    else:
        unet = _strip_prefix(state_dict, (LDM_UNET_PREFIX,))
    keys = list(unet)
    if unet_config is not None and "layers_per_block" in unet_config:
        lpb = _layers_per_block(unet_config)
    else:
        lpb = _infer_layers_per_block(keys)
    stride = lpb + 1
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key in keys:
        new = _unet_key_to_diffusers(key, stride)
        if new is None:
            unknown.append(key)
        else:
            out[new] = unet[key]
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} UNet tensors do not fit the Stable Diffusion 1.x layout "
            f"(e.g. {unknown[:5]}); is this an SD 1.x checkpoint?"
        )
    return out


def _unet_key_to_diffusers(key: str, stride: int) -> str | None:
    if (m := _RE_TOP.match(key)) is not None:
        return f"{_UNET_TOP_LDM_TO_DIFFUSERS[m.group(1)]}.{m.group(2)}"
    if (m := _RE_INPUT.match(key)) is not None:
        index, sub, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        if index == 0:
            return None
        block, layer = divmod(index - 1, stride)
        if sub == 0 and rest.startswith("op."):
            return f"down_blocks.{block}.downsamplers.0.conv.{rest[3:]}"
        if sub == 0:
            return _rename_resnet(
                f"down_blocks.{block}.resnets.{layer}.", rest, _UNET_RESNET_LDM_TO_DIFFUSERS
            )
        if sub == 1:
            return f"down_blocks.{block}.attentions.{layer}.{rest}"
        return None
    if (m := _RE_MIDDLE.match(key)) is not None:
        index, rest = int(m.group(1)), m.group(2)
        if index in (0, 2):
            return _rename_resnet(
                f"mid_block.resnets.{index // 2}.", rest, _UNET_RESNET_LDM_TO_DIFFUSERS
            )
        if index == 1:
            return f"mid_block.attentions.0.{rest}"
        return None
    if (m := _RE_OUTPUT.match(key)) is not None:
        index, sub, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        block, layer = divmod(index, stride)
        if sub == 0:
            return _rename_resnet(
                f"up_blocks.{block}.resnets.{layer}.", rest, _UNET_RESNET_LDM_TO_DIFFUSERS
            )
        if sub in (1, 2) and rest.startswith("conv."):
            return f"up_blocks.{block}.upsamplers.0.conv.{rest[5:]}"
        if sub == 1:
            return f"up_blocks.{block}.attentions.{layer}.{rest}"
        return None
    return None


_RE_D_DOWN = re.compile(r"^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$")
_RE_D_DOWNSAMPLE = re.compile(r"^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$")
_RE_D_MID = re.compile(r"^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")
_RE_D_UP = re.compile(r"^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$")
_RE_D_UPSAMPLE = re.compile(r"^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$")
_RE_D_TOP = re.compile(
    r"^(time_embedding\.linear_[12]|conv_in|conv_norm_out|conv_out)\.(weight|bias)$"
)


def to_ldm_unet_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    unet_config: Mapping[str, Any] | None = None,
    *,
    prefix: str = LDM_UNET_PREFIX,
) -> dict[str, torch.Tensor]:
    """Rename a diffusers-layout SD 1.x UNet state dict to the LDM single-file layout.

    The inverse of :func:`convert_ldm_unet_state_dict`.

    Parameters
    ----------
    state_dict
        Diffusers names (``down_blocks.0.resnets.0.norm1.weight``, ...).
    unet_config
        A mapping with ``layers_per_block``; ``None`` counts the resnets of
        ``down_blocks.0``.
    prefix
        Put before every key (default ``model.diffusion_model.``).

    Returns
    -------
    dict[str, torch.Tensor]
        LDM names (``model.diffusion_model.input_blocks.1.0.in_layers.0.weight``, ...).

    Raises
    ------
    CheckpointError
        If a key has no place in the SD 1.x layout.
    """
    keys = list(state_dict)
    if unet_config is not None and "layers_per_block" in unet_config:
        lpb = _layers_per_block(unet_config)
    else:
        layers = {
            int(m.group(3))
            for k in keys
            if (m := _RE_D_DOWN.match(k)) is not None and m.group(1) == "0"
        }
        if not layers:
            raise CheckpointError("cannot infer layers_per_block: no down_blocks.0.resnets.*")
        lpb = max(layers) + 1
    stride = lpb + 1
    up_with_attention = {
        int(m.group(1))
        for k in keys
        if (m := _RE_D_UP.match(k)) is not None and m.group(2) == "attentions"
    }
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key in keys:
        new: str | None = None
        if (m := _RE_D_TOP.match(key)) is not None:
            new = f"{_UNET_TOP_DIFFUSERS_TO_LDM[m.group(1)]}.{m.group(2)}"
        elif (m := _RE_D_DOWN.match(key)) is not None:
            block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            index = 1 + block * stride + layer
            if kind == "resnets":
                new = _rename_resnet(
                    f"input_blocks.{index}.0.", rest, _UNET_RESNET_DIFFUSERS_TO_LDM
                )
            else:
                new = f"input_blocks.{index}.1.{rest}"
        elif (m := _RE_D_DOWNSAMPLE.match(key)) is not None:
            block = int(m.group(1))
            new = f"input_blocks.{1 + block * stride + lpb}.0.op.{m.group(2)}"
        elif (m := _RE_D_MID.match(key)) is not None:
            kind, idx, rest = m.group(1), int(m.group(2)), m.group(3)
            if kind == "resnets":
                new = _rename_resnet(
                    f"middle_block.{2 * idx}.", rest, _UNET_RESNET_DIFFUSERS_TO_LDM
                )
            else:
                new = f"middle_block.1.{rest}"
        elif (m := _RE_D_UP.match(key)) is not None:
            block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            index = block * stride + layer
            if kind == "resnets":
                new = _rename_resnet(
                    f"output_blocks.{index}.0.", rest, _UNET_RESNET_DIFFUSERS_TO_LDM
                )
            else:
                new = f"output_blocks.{index}.1.{rest}"
        elif (m := _RE_D_UPSAMPLE.match(key)) is not None:
            block = int(m.group(1))
            sub = 2 if block in up_with_attention else 1
            new = f"output_blocks.{block * stride + lpb}.{sub}.conv.{m.group(2)}"
        if new is None:
            unknown.append(key)
        else:
            out[prefix + new] = state_dict[key]
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} UNet tensors have no place in the LDM SD 1.x layout: {unknown[:5]}"
        )
    return out


# --------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------

_VAE_TOP_LDM_TO_DIFFUSERS = {
    "encoder.conv_in": "encoder.conv_in",
    "encoder.conv_out": "encoder.conv_out",
    "encoder.norm_out": "encoder.conv_norm_out",
    "decoder.conv_in": "decoder.conv_in",
    "decoder.conv_out": "decoder.conv_out",
    "decoder.norm_out": "decoder.conv_norm_out",
    "quant_conv": "quant_conv",
    "post_quant_conv": "post_quant_conv",
}
_VAE_TOP_DIFFUSERS_TO_LDM = {v: k for k, v in _VAE_TOP_LDM_TO_DIFFUSERS.items()}
_VAE_ATTN_LDM_TO_DIFFUSERS = {
    "norm": "group_norm",
    "q": "to_q",
    "k": "to_k",
    "v": "to_v",
    "proj_out": "to_out.0",
}
_VAE_ATTN_DIFFUSERS_TO_LDM = {v: k for k, v in _VAE_ATTN_LDM_TO_DIFFUSERS.items()}
_VAE_RESNET_NAMES = ("norm1", "conv1", "norm2", "conv2")

_RE_V_TOP = re.compile(
    r"^(encoder\.conv_in|encoder\.conv_out|encoder\.norm_out|decoder\.conv_in|decoder\.conv_out"
    r"|decoder\.norm_out|quant_conv|post_quant_conv)\.(weight|bias)$"
)
_RE_V_BLOCK = re.compile(
    r"^(encoder\.down|decoder\.up)\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)$"
)
_RE_V_SAMPLE = re.compile(
    r"^(encoder\.down|decoder\.up)\.(\d+)\.(downsample|upsample)\.conv\.(.+)$"
)
_RE_V_MID_RES = re.compile(r"^(encoder|decoder)\.mid\.block_([12])\.(\w+)\.(weight|bias)$")
_RE_V_MID_ATTN = re.compile(r"^(encoder|decoder)\.mid\.attn_1\.(\w+)\.(weight|bias)$")


def _vae_resnet_to_diffusers(name: str) -> str | None:
    if name == "nin_shortcut":
        return "conv_shortcut"
    return name if name in _VAE_RESNET_NAMES else None


def _vae_resnet_to_ldm(name: str) -> str | None:
    if name == "conv_shortcut":
        return "nin_shortcut"
    return name if name in _VAE_RESNET_NAMES else None


def convert_ldm_vae_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_up_blocks: int | None = None
) -> dict[str, torch.Tensor]:
    """Rename an LDM-layout Stable Diffusion VAE state dict to the diffusers layout.

    Parameters
    ----------
    state_dict
        A whole single-file checkpoint (VAE keys under ``first_stage_model.`` or
        ``vae.``; other keys are ignored) or just the VAE tensors without a prefix.
    num_up_blocks
        Number of decoder resolution levels (4 for SD); ``None`` counts them.
        LDM numbers the decoder levels from the lowest resolution up and
        diffusers from the latent side, so ``decoder.up.{k}`` becomes
        ``decoder.up_blocks.{n - 1 - k}``.

    Returns
    -------
    dict[str, torch.Tensor]
        Diffusers names; the mid-block attention projections reshaped from
        ``(c, c, 1, 1)`` to ``(c, c)``.

    Raises
    ------
    CheckpointError
        If a VAE key has no place in the layout.
    """
    vae = _strip_prefix(state_dict, LDM_VAE_PREFIXES)
    if num_up_blocks is None:
        levels = [int(m.group(2)) for k in vae if (m := _RE_V_BLOCK.match(k)) is not None]
        levels += [int(m.group(2)) for k in vae if (m := _RE_V_SAMPLE.match(k)) is not None]
        num_up_blocks = max(levels) + 1 if levels else 0
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in vae.items():
        new: str | None = None
        if (m := _RE_V_TOP.match(key)) is not None:
            new = f"{_VAE_TOP_LDM_TO_DIFFUSERS[m.group(1)]}.{m.group(2)}"
        elif (m := _RE_V_BLOCK.match(key)) is not None:
            side, level, layer = m.group(1), int(m.group(2)), int(m.group(3))
            name = _vae_resnet_to_diffusers(m.group(4))
            if name is not None:
                if side == "encoder.down":
                    new = f"encoder.down_blocks.{level}.resnets.{layer}.{name}.{m.group(5)}"
                else:
                    block = num_up_blocks - 1 - level
                    new = f"decoder.up_blocks.{block}.resnets.{layer}.{name}.{m.group(5)}"
        elif (m := _RE_V_SAMPLE.match(key)) is not None:
            side, level, rest = m.group(1), int(m.group(2)), m.group(4)
            if side == "encoder.down" and m.group(3) == "downsample":
                new = f"encoder.down_blocks.{level}.downsamplers.0.conv.{rest}"
            elif side == "decoder.up" and m.group(3) == "upsample":
                new = f"decoder.up_blocks.{num_up_blocks - 1 - level}.upsamplers.0.conv.{rest}"
        elif (m := _RE_V_MID_RES.match(key)) is not None:
            name = _vae_resnet_to_diffusers(m.group(3))
            if name is not None:
                idx = int(m.group(2)) - 1
                new = f"{m.group(1)}.mid_block.resnets.{idx}.{name}.{m.group(4)}"
        elif (m := _RE_V_MID_ATTN.match(key)) is not None:
            attn_name = _VAE_ATTN_LDM_TO_DIFFUSERS.get(m.group(2))
            if attn_name is not None:
                new = f"{m.group(1)}.mid_block.attentions.0.{attn_name}.{m.group(3)}"
                if value.ndim > 2:
                    value = value.reshape(value.shape[0], value.shape[1])
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} VAE tensors do not fit the Stable Diffusion VAE layout "
            f"(e.g. {unknown[:5]}); is this an SD 1.x checkpoint?"
        )
    return out


_RE_VD_BLOCK = re.compile(
    r"^(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.resnets\.(\d+)\.(\w+)\.(weight|bias)$"
)
_RE_VD_SAMPLE = re.compile(
    r"^(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.(downsamplers|upsamplers)\.0\.conv\.(.+)$"
)
_RE_VD_MID_RES = re.compile(
    r"^(encoder|decoder)\.mid_block\.resnets\.([01])\.(\w+)\.(weight|bias)$"
)
_RE_VD_MID_ATTN = re.compile(
    r"^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\."
    r"(weight|bias)$"
)
_RE_VD_TOP = re.compile(
    r"^(encoder\.conv_in|encoder\.conv_out|encoder\.conv_norm_out|decoder\.conv_in"
    r"|decoder\.conv_out|decoder\.conv_norm_out|quant_conv|post_quant_conv)\.(weight|bias)$"
)


def to_ldm_vae_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_up_blocks: int | None = None,
    *,
    prefix: str = LDM_VAE_PREFIXES[0],
) -> dict[str, torch.Tensor]:
    """Rename a diffusers-layout VAE state dict to the LDM single-file layout.

    The inverse of :func:`convert_ldm_vae_state_dict`: the mid-block attention
    projections become 1x1 convolution weights ``(c, c, 1, 1)`` as in the
    original checkpoints.

    Parameters
    ----------
    state_dict
        Diffusers names (``encoder.down_blocks.0.resnets.0.norm1.weight``, ...).
    num_up_blocks
        Number of decoder levels; ``None`` counts them.
    prefix
        Put before every key (default ``first_stage_model.``).

    Returns
    -------
    dict[str, torch.Tensor]
        LDM names (``first_stage_model.encoder.down.0.block.0.norm1.weight``, ...).

    Raises
    ------
    CheckpointError
        If a key has no place in the layout.
    """
    if num_up_blocks is None:
        levels = [
            int(m.group(2))
            for k in state_dict
            if (m := _RE_VD_BLOCK.match(k)) is not None and m.group(1) == "decoder.up_blocks"
        ]
        num_up_blocks = max(levels) + 1 if levels else 0
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        new: str | None = None
        if (m := _RE_VD_TOP.match(key)) is not None:
            new = f"{_VAE_TOP_DIFFUSERS_TO_LDM[m.group(1)]}.{m.group(2)}"
        elif (m := _RE_VD_BLOCK.match(key)) is not None:
            side, level, layer = m.group(1), int(m.group(2)), int(m.group(3))
            name = _vae_resnet_to_ldm(m.group(4))
            if name is not None:
                if side == "encoder.down_blocks":
                    new = f"encoder.down.{level}.block.{layer}.{name}.{m.group(5)}"
                else:
                    new = (
                        f"decoder.up.{num_up_blocks - 1 - level}.block.{layer}.{name}.{m.group(5)}"
                    )
        elif (m := _RE_VD_SAMPLE.match(key)) is not None:
            side, level, rest = m.group(1), int(m.group(2)), m.group(4)
            if side == "encoder.down_blocks" and m.group(3) == "downsamplers":
                new = f"encoder.down.{level}.downsample.conv.{rest}"
            elif side == "decoder.up_blocks" and m.group(3) == "upsamplers":
                new = f"decoder.up.{num_up_blocks - 1 - level}.upsample.conv.{rest}"
        elif (m := _RE_VD_MID_RES.match(key)) is not None:
            name = _vae_resnet_to_ldm(m.group(3))
            if name is not None:
                new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{name}.{m.group(4)}"
        elif (m := _RE_VD_MID_ATTN.match(key)) is not None:
            ldm_name = _VAE_ATTN_DIFFUSERS_TO_LDM[m.group(2)]
            new = f"{m.group(1)}.mid.attn_1.{ldm_name}.{m.group(3)}"
            if ldm_name != "norm" and m.group(3) == "weight" and value.ndim == 2:
                value = value[:, :, None, None]
        if new is None:
            unknown.append(key)
        else:
            out[prefix + new] = value
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} VAE tensors have no place in the LDM layout: {unknown[:5]}"
        )
    return out


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def _layers_per_block(config: Mapping[str, Any]) -> int:
    value = config["layers_per_block"]
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(
                f"layers_per_block={list(value)} differs between levels; the LDM layout "
                "needs one value"
            )
        value = value[0]
    return int(value)


def _read_checkpoint(path: Path, wanted: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Read the tensors whose names start with one of ``wanted`` from a checkpoint file."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
                return {
                    key: handle.get_tensor(key)
                    for key in handle.keys()  # noqa: SIM118 (not a dict)
                    if key.startswith(wanted)
                }
        except Exception as exc:
            raise CheckpointError(f"cannot read checkpoint {os.fspath(path)!r}: {exc}") from exc
    full = load_state_dict_file(path)
    return {k: v for k, v in full.items() if k.startswith(wanted)}


_VAE_BARE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")


def load_ldm_vae_single_file(
    path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read the VAE of a single-file checkpoint (full SD 1.x, or a standalone LDM VAE file).

    A full checkpoint keeps the VAE under ``first_stage_model.``; standalone
    VAE files (e.g. the fine-tuned ``vae-ft-mse`` releases) use bare
    ``encoder.*``/``decoder.*`` keys. Other tensors (UNet, text encoder,
    training losses) are skipped.

    Parameters
    ----------
    path
        A ``.safetensors`` or ``.ckpt`` file.
    config
        Values that replace those of the SD 1.x VAE config (for VAEs of
        another size in the same layout).

    Returns
    -------
    tuple
        ``(vae_config, vae_state_dict)``: the SD 1.x
        :class:`~emo.models.vae.AutoencoderKL` config and its tensors with
        diffusers names.

    Raises
    ------
    CheckpointError
        If the file is missing or unreadable or holds no SD VAE.
    """
    file = Path(path)
    checkpoint = _read_checkpoint(file, (*LDM_VAE_PREFIXES, *_VAE_BARE_PREFIXES))
    if not any(k.startswith(LDM_VAE_PREFIXES) for k in checkpoint):
        checkpoint = {k: v for k, v in checkpoint.items() if k.startswith(_VAE_BARE_PREFIXES)}
    if not checkpoint:
        raise CheckpointError(
            f"{os.fspath(file)!r} holds no VAE tensors ('first_stage_model.*' or 'encoder.*' "
            "keys); is it a Stable Diffusion checkpoint?"
        )
    vae_config = sd15_vae_config()
    vae_config.update(config or {})
    state = convert_ldm_vae_state_dict(
        checkpoint, num_up_blocks=len(vae_config["block_out_channels"])
    )
    return vae_config, state


def load_single_file_vae(
    cls: type[_V],
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    strict: bool = True,
    config: Mapping[str, Any] | None = None,
) -> _V:
    """Load the VAE of a single-file checkpoint into ``cls`` (see ``AutoencoderKL.from_single_file``).

    Parameters
    ----------
    cls
        The VAE class (:class:`~emo.models.vae.AutoencoderKL`).
    path, config
        As in :func:`load_ldm_vae_single_file`.
    dtype, device, strict
        As in :func:`emo.loaders.diffusers_vae.build_vae`.
    """
    vae_config, state = load_ldm_vae_single_file(path, config)
    return build_vae(
        cls, vae_config, state, source=os.fspath(path), strict=strict, dtype=dtype, device=device
    )


def load_sd15_single_file(
    path: str | os.PathLike[str],
    *,
    extract_ema: bool = False,
    unet_config: Mapping[str, Any] | None = None,
    vae_config: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]:
    """Read a single-file Stable Diffusion 1.x checkpoint and convert UNet and VAE weights.

    Only the UNet and VAE tensors are read from a ``.safetensors`` file (the
    text encoder is skipped); a ``.ckpt``/``.pt``/``.bin`` file is unpickled
    with ``weights_only=True``.

    Parameters
    ----------
    path
        The ``.ckpt`` or ``.safetensors`` file.
    extract_ema
        Use the EMA UNet weights (``model_ema.*``) of a non-pruned checkpoint.
    unet_config
        Values that replace those of the SD 1.5 UNet config (diffusers terms).
    vae_config
        Values that replace those of the SD 1.x VAE config.

    Returns
    -------
    tuple
        ``(unet_config, unet_state_dict, vae_config, vae_state_dict)``: the SD 1.5
        UNet config in diffusers terms (``in_channels`` and
        ``cross_attention_dim`` read from the weights, e.g. 9 input channels
        for inpainting checkpoints), the UNet tensors with diffusers names, the
        :class:`~emo.models.vae.AutoencoderKL` config, and its tensors.

    Raises
    ------
    CheckpointError
        If the file is missing or unreadable, holds no SD UNet or VAE, or is
        not of the SD 1.x layout (e.g. SD 2.x or SDXL).
    """
    file = Path(path)
    wanted = (LDM_UNET_PREFIX, *LDM_VAE_PREFIXES) + ((_EMA_PREFIX,) if extract_ema else ())
    checkpoint = _read_checkpoint(file, wanted)
    if not any(k.startswith(LDM_UNET_PREFIX) for k in checkpoint):
        raise CheckpointError(
            f"{os.fspath(file)!r} holds no Stable Diffusion UNet ('{LDM_UNET_PREFIX}*' keys); "
            "is it a full single-file SD 1.x checkpoint?"
        )
    if not any(k.startswith(LDM_VAE_PREFIXES) for k in checkpoint):
        raise CheckpointError(
            f"{os.fspath(file)!r} holds no VAE ('first_stage_model.*' keys); "
            "load the VAE from a diffusers folder instead"
        )
    unet_cfg = sd15_unet_config()
    unet_cfg.update(unet_config or {})
    conv_in = checkpoint.get(LDM_UNET_PREFIX + "input_blocks.0.0.weight")
    if conv_in is not None:
        unet_cfg["in_channels"] = int(conv_in.shape[1])
    context = checkpoint.get(
        LDM_UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    )
    width = unet_cfg["cross_attention_dim"]
    if context is not None and int(context.shape[1]) != width:
        raise CheckpointError(
            f"{os.fspath(file)!r} has cross-attention width {int(context.shape[1])}, not "
            f"{width}: it is not a Stable Diffusion 1.x checkpoint (SD 2.x and SDXL are not "
            "supported)"
        )
    unet_state = convert_ldm_unet_state_dict(
        {k: v for k, v in checkpoint.items() if not k.startswith(LDM_VAE_PREFIXES)},
        unet_cfg,
        extract_ema=extract_ema,
    )
    vae_cfg = sd15_vae_config()
    vae_cfg.update(vae_config or {})
    vae_state = convert_ldm_vae_state_dict(
        {k: v for k, v in checkpoint.items() if k.startswith(LDM_VAE_PREFIXES)},
        num_up_blocks=len(vae_cfg["block_out_channels"]),
    )
    return unet_cfg, unet_state, vae_cfg, vae_state
