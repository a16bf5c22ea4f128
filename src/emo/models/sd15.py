"""The Stable Diffusion 1.5 network configs: the one place these facts are written.

The defaults of :class:`~emo.models.UNet2D`, :class:`~emo.models.ReferenceNet`,
:class:`~emo.models.Backbone` and :class:`~emo.models.vae.AutoencoderKL`, the
``sd15`` preset (:mod:`emo.models.presets`) and the single-file importer
(:mod:`emo.loaders.single_file`) all read them from here. The keys are
``__init__`` arguments of those classes, which are also diffusers config keys.

This module imports nothing heavy, so presets and importers can read it freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["SD15_UNET_CONFIG", "SD15_VAE_CONFIG", "sd15_unet_config", "sd15_vae_config"]

#: The Stable Diffusion 1.5 UNet (``UNet2DConditionModel``) config, read-only.
SD15_UNET_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        "up_block_types": (
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "attention_head_dim": 8,
        "cross_attention_dim": 768,
        "use_linear_projection": False,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
    }
)

#: The Stable Diffusion 1.x VAE (``AutoencoderKL``) config, read-only.
SD15_VAE_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "act_fn": "silu",
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 512,
        "scaling_factor": 0.18215,
        "use_quant_conv": True,
        "use_post_quant_conv": True,
    }
)


def _as_json(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in config.items()}


def sd15_unet_config() -> dict[str, Any]:
    """A fresh, editable copy of :data:`SD15_UNET_CONFIG`, sequences as lists (as in JSON).

    Returns
    -------
    dict[str, Any]
        ``block_out_channels`` ``[320, 640, 1280, 1280]``, ``layers_per_block`` 2,
        ``cross_attention_dim`` 768, ...
    """
    return _as_json(SD15_UNET_CONFIG)


def sd15_vae_config() -> dict[str, Any]:
    """A fresh, editable copy of :data:`SD15_VAE_CONFIG`, sequences as lists (as in JSON)."""
    return _as_json(SD15_VAE_CONFIG)
