"""UNet2D against the diffusers UNet2DConditionModel (test-only oracle), plus UNet2D behaviour."""

from __future__ import annotations

from typing import Any

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.loaders.diffusers_unet import unet_config_from_diffusers
from emo.models import UNet2D

pytestmark = pytest.mark.usefixtures("one_thread")


CONFIGS: dict[str, dict[str, Any]] = {
    "conv-1layer-int-heads": {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "attention_head_dim": 4,
        "use_linear_projection": False,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    },
    "linear-2layers-per-block-heads": {
        "block_out_channels": (32, 64, 64),
        "layers_per_block": 2,
        "attention_head_dim": (2, 4, 8),
        "use_linear_projection": True,
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    },
    "conv-2layers-all-cross": {
        "block_out_channels": (16, 32),
        "layers_per_block": 2,
        "attention_head_dim": 2,
        "use_linear_projection": False,
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    },
}


def make_reference(config: dict[str, Any], seed: int = 0) -> Any:
    torch.manual_seed(seed)
    ref = diffusers.UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        norm_num_groups=8,
        cross_attention_dim=24,
        **config,
    ).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return ref


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unet_matches_diffusers(name: str) -> None:
    ref = make_reference(CONFIGS[name])
    ours = UNet2D.from_config(unet_config_from_diffusers(dict(ref.config))).eval()
    report = ours.load_weights(ref.state_dict(), strict=True)
    assert report.ok
    assert set(ours.state_dict()) == set(ref.state_dict())
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=gen)
    text = torch.randn(2, 7, 24, generator=gen)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        expected = ref(x, t, text).sample
        got = ours(x, t, text)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5
    # A size that is not a multiple of the downsampling factor, and a scalar timestep.
    x_odd = torch.randn(1, 4, 13, 10, generator=gen)
    with torch.no_grad():
        expected = ref(x_odd, 321, text[:1]).sample
        got = ours(x_odd, 321, text[:1])
    assert (got - expected).abs().max().item() <= 1e-5


def test_unet_config_roundtrip_and_save(tmp_path: Any) -> None:
    ref = make_reference(CONFIGS["conv-1layer-int-heads"])
    ours = UNet2D.from_config(unet_config_from_diffusers(dict(ref.config))).eval()
    ours.load_weights(ref.state_dict())
    ours.save_pretrained(tmp_path / "unet")
    again = UNet2D.from_pretrained(tmp_path / "unet").eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        text = torch.randn(1, 3, 24)
        assert torch.equal(ours(x, 5, text), again(x, 5, text))


def test_unet_without_text_skips_cross_attention() -> None:
    unet = UNet2D(**CONFIGS["conv-1layer-int-heads"], norm_num_groups=8, cross_attention_dim=24)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        out = unet(x, 1)
        # attn2 contributes nothing when it is skipped: zeroing its output changes nothing.
        for name, p in unet.named_parameters():
            if ".attn2.to_out" in name:
                p.zero_()
        assert torch.equal(out, unet(x, 1))


def test_unet_gradient_checkpointing_same_gradients() -> None:
    torch.manual_seed(0)
    unet = UNet2D(**CONFIGS["conv-1layer-int-heads"], norm_num_groups=8, cross_attention_dim=24)
    x = torch.randn(2, 4, 8, 8)
    text = torch.randn(2, 3, 24)
    unet(x, 3, text).square().mean().backward()
    plain = {n: p.grad.clone() for n, p in unet.named_parameters() if p.grad is not None}
    unet.zero_grad()
    unet.enable_gradient_checkpointing()
    unet(x, 3, text).square().mean().backward()
    for name, p in unet.named_parameters():
        if name in plain:
            assert p.grad is not None
            torch.testing.assert_close(p.grad, plain[name], rtol=1e-5, atol=1e-6)


def test_unet_bf16_and_channels_last() -> None:
    torch.manual_seed(0)
    unet = UNet2D(**CONFIGS["conv-1layer-int-heads"], norm_num_groups=8, cross_attention_dim=24)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        ref = unet(x, 3)
        cl = unet.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), 3)
        torch.testing.assert_close(cl, ref, rtol=1e-5, atol=1e-5)
        half = unet.to(torch.bfloat16)(x.to(torch.bfloat16), 3)
    assert half.dtype == torch.bfloat16
    assert (half.float() - ref).abs().max().item() < 0.1


def test_unet_bad_inputs_and_configs() -> None:
    unet = UNet2D(**CONFIGS["conv-1layer-int-heads"], norm_num_groups=8, cross_attention_dim=24)
    with pytest.raises(InputError, match="channels"):
        unet(torch.randn(1, 3, 8, 8), 1)
    with pytest.raises(InputError, match=r"\(b, c, h, w\)"):
        unet(torch.randn(4, 8, 8), 1)
    with pytest.raises(InputError, match="timestep"):
        unet(torch.randn(2, 4, 8, 8), torch.tensor([1, 2, 3]))
    with pytest.raises(InputError, match="encoder_hidden_states"):
        unet(torch.randn(1, 4, 8, 8), 1, torch.randn(1, 3, 5))
    with pytest.raises(ConfigError, match="block types"):
        UNet2D(block_out_channels=(32,), down_block_types=("Foo",), up_block_types=("UpBlock2D",))
    with pytest.raises(ConfigError, match="norm_num_groups"):
        UNet2D(**{**CONFIGS["conv-1layer-int-heads"], "block_out_channels": (30, 64)})
    with pytest.raises(ConfigError, match="class_embed_type"):
        unet_config_from_diffusers({"class_embed_type": "timestep"})
