"""ReferenceNet: its features are what enters every attn1, checked on diffusers' UNet."""

from __future__ import annotations

from typing import Any

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch

from emo.errors import CheckpointError
from emo.models import Backbone, ReferenceFeatures, ReferenceNet, UNet2D

pytestmark = pytest.mark.usefixtures("one_thread")


CONFIG: dict[str, Any] = {
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 2,
    "attention_head_dim": (2, 4, 8),
    "use_linear_projection": True,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}


def make_reference(use_linear_projection: bool) -> Any:
    torch.manual_seed(0)
    ref = diffusers.UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        norm_num_groups=8,
        cross_attention_dim=24,
        **{**CONFIG, "use_linear_projection": use_linear_projection},
    ).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return ref


@pytest.mark.parametrize("linear", [True, False])
def test_reference_features_equal_attn1_inputs(linear: bool) -> None:
    ref = make_reference(linear)
    captured: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Any:
        def pre(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            captured[name] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        return pre

    for name, module in ref.named_modules():
        if name.endswith(".attn1"):
            module.register_forward_pre_hook(hook(name[: -len(".attn1")]), with_kwargs=True)
    net = ReferenceNet.from_unet2d((dict(ref.config), ref.state_dict())).eval()
    # A ReferenceNet builds no text cross-attention (attn2); the oracle's gets a zero output.
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if ".attn2.to_out." in name:
                p.zero_()
    x = torch.randn(2, 4, 16, 16)
    text = torch.randn(2, 5, 24)
    with torch.no_grad():
        ref(x, 0, text)
        features = net(x, 0)
    assert isinstance(features, ReferenceFeatures)
    assert list(features.attention) == list(captured)  # same layers, same (forward) order
    for key, tokens in captured.items():
        got = features.attention[key]
        assert got.shape == tokens.shape
        assert (got - tokens).abs().max().item() <= 1e-5, key
    assert features.batch_size == 2


def test_reference_net_has_no_head_and_layer_keys_match_backbone() -> None:
    net = ReferenceNet(**CONFIG, norm_num_groups=8, cross_attention_dim=24)
    names = set(net.state_dict())
    assert not any(k.startswith(("conv_norm_out", "conv_out")) for k in names)
    unet_names = set(UNet2D(**CONFIG, norm_num_groups=8, cross_attention_dim=24).state_dict())
    text = {k for k in unet_names if ".attn2." in k or ".transformer_blocks.0.norm2." in k}
    assert text and not text & names  # no text cross-attention
    assert unet_names - names - text == {
        "conv_norm_out.weight",
        "conv_norm_out.bias",
        "conv_out.weight",
        "conv_out.bias",
    }
    backbone = Backbone(
        **CONFIG,
        norm_num_groups=8,
        cross_attention_dim=24,
        audio_cross_attention_dim=16,
        motion_num_attention_heads=2,
        speed_embed_dim=8,
    )
    with torch.no_grad():
        features = net(torch.randn(1, 4, 16, 16))
    assert list(features.layers) == net.layer_keys
    assert sorted(features.layers) == sorted(backbone.motion_module_keys)
    assert "mid_block.motion_modules.0" in features.layers
    assert features.layers["down_blocks.0.motion_modules.1"].shape == (1, 32, 16, 16)
    assert features.layers["up_blocks.0.motion_modules.2"].shape == (1, 64, 4, 4)
    assert list(features.attention) == net.attention_keys
    token = features.attention["down_blocks.1.attentions.0.transformer_blocks.0"]
    assert token.shape == (1, 8 * 8, 64)


def test_reference_features_helpers() -> None:
    net = ReferenceNet(**CONFIG, norm_num_groups=8, cross_attention_dim=24)
    features = net(torch.randn(2, 4, 8, 8))
    repeated = features.detach().repeat_interleave(3)
    assert repeated.batch_size == 6
    key = next(iter(features.layers))
    assert torch.equal(repeated.layers[key][3], features.layers[key][1].detach())
    half = features.to(dtype=torch.bfloat16)
    assert all(v.dtype == torch.bfloat16 for v in half.attention.values())
    assert ReferenceFeatures().batch_size == 0


def test_reference_net_from_unet2d_strict_errors() -> None:
    unet = UNet2D(**CONFIG, norm_num_groups=8, cross_attention_dim=24)
    net = ReferenceNet.from_unet2d(unet)
    assert torch.equal(net.conv_in.weight, unet.conv_in.weight)
    state = unet.state_dict()
    state.pop("conv_in.weight")
    with pytest.raises(CheckpointError, match=r"conv_in\.weight"):
        ReferenceNet.from_unet2d(state, **CONFIG, norm_num_groups=8, cross_attention_dim=24)
    with pytest.raises(CheckpointError, match="shape"):
        ReferenceNet.from_unet2d(unet, in_channels=8)
