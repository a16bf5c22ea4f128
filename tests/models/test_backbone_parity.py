"""A fresh Backbone from SD + AnimateDiff weights equals diffusers' UNetMotionModel (test oracle).

diffusers is a test dependency: these tests fail (they do not skip) when it is missing.
"""

from __future__ import annotations

import re
from typing import Any

import diffusers
import pytest
import torch

from emo.loaders.diffusers_unet import build_from_unet_source, unet_config_from_diffusers
from emo.models import Backbone, ReferenceNet

UNETS: dict[str, dict[str, Any]] = {
    "conv-1layer": {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "attention_head_dim": 4,
        "use_linear_projection": False,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    },
    "linear-2layers": {
        "block_out_channels": (32, 64),
        "layers_per_block": 2,
        "attention_head_dim": (2, 4),
        "use_linear_projection": True,
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    },
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _perturb(module: torch.nn.Module, std: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * std)


def _oracle(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        norm_num_groups=8,
        cross_attention_dim=24,
        **config,
    ).eval()
    _perturb(unet, 0.02)
    layers = config["layers_per_block"]
    adapter = diffusers.MotionAdapter(
        block_out_channels=config["block_out_channels"],
        motion_layers_per_block=layers,
        motion_mid_block_layers_per_block=1,
        motion_num_attention_heads=4,
        motion_norm_num_groups=8,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    )
    _perturb(adapter, 0.05)  # trained-like motion modules: proj_out is not zero
    motion = diffusers.UNetMotionModel.from_unet2d(unet, adapter).eval()
    # EMO builds no text cross-attention (attn2); diffusers always runs it. With its output
    # projection at zero the oracle computes the SD UNet without text, which is what a
    # Backbone holds.
    with torch.no_grad():
        for name, p in motion.named_parameters():
            if ".attentions." in name and ".attn2.to_out." in name:  # spatial, not temporal
                p.zero_()
    return unet, adapter, motion


@pytest.mark.parametrize("name", sorted(UNETS))
def test_fresh_backbone_equals_diffusers_unet_motion_model(name: str) -> None:
    unet, adapter, motion = _oracle(UNETS[name])
    backbone = Backbone.from_unet2d(
        (dict(unet.config), unet.state_dict()),
        audio_cross_attention_dim=16,
        speed_embed_dim=8,
        motion_num_attention_heads=4,
        motion_norm_across_frames=True,  # diffusers' GroupNorm takes statistics over frames
    ).eval()
    report = backbone.load_motion_modules(adapter.state_dict(), strict=True)
    assert not report.unexpected_keys
    assert all(".speed_" in k for k in report.missing_keys)  # only EMO's own speed attention
    assert not any(".attn2." in k for k in backbone.state_dict())
    gen = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 5, 8, 8, generator=gen)
    text = torch.randn(2, 3, 24, generator=gen)  # goes nowhere: attn2's output is zero
    t = torch.tensor([10, 600])
    with torch.no_grad():
        # This diffusers version takes the text per frame, ((b f), t, d).
        expected = motion(sample, t, text.repeat_interleave(5, dim=0)).sample
        got = backbone(sample, t)
        per_frame = torch.stack([unet(sample[:, :, i], t, text).sample for i in range(5)], dim=2)
    assert (expected - per_frame).abs().max() > 1e-3  # the motion modules do mix frames
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)


def test_sd_text_attention_is_not_built_and_reported_skipped() -> None:
    unet, _, _ = _oracle(UNETS["conv-1layer"])
    config = unet_config_from_diffusers(dict(unet.config))
    text = sorted(
        k for k in unet.state_dict() if re.search(r"transformer_blocks\.\d+\.(attn2|norm2)\.", k)
    )
    assert text
    for cls in (Backbone, ReferenceNet):
        model, report = build_from_unet_source(cls, (config, unet.state_dict()), strict=True)
        assert sorted(report.skipped_keys) == text, cls.__name__
        assert not set(text) & set(model.state_dict())
        assert not set(report.unexpected_keys) & set(text)
        assert model.config["cross_attention_dim"] == 24  # the SD config loads as it is
        assert f"{len(text)} checkpoint keys skipped" in report.describe()
