"""Tiny network configs shared by the model tests.

A module rather than a fixture: parametrize lists and default arguments read them
when a test module is imported. Import with ``from model_configs import TINY_UNET``.
"""

from __future__ import annotations

from typing import Any

#: Two levels, one layer each, GroupNorm groups 8, text width 24: a UNet2D of ~0.5 M parameters.
TINY_UNET: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "cross_attention_dim": 24,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
}
