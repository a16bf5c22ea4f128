"""Backbone: a fresh one equals its 2D UNet frame by frame; each new branch does its job."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from model_configs import TINY_UNET

from emo.errors import InputError
from emo.models import Backbone, ReferenceNet, UNet2D

CONFIG = TINY_UNET
NEW: dict[str, Any] = {
    "audio_cross_attention_dim": 16,
    "motion_num_attention_heads": 4,
    "speed_embed_dim": 8,
}
B, F, N = 2, 3, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def perturbed_unet(config: dict[str, Any] = CONFIG, seed: int = 0) -> UNet2D:
    torch.manual_seed(seed)
    unet = UNet2D(**config).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return unet


def inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(B, 4, F, 8, 8, generator=gen),
        "audio": torch.randn(B, F, 4, 16, generator=gen),
        "motion": torch.randn(B, 4, N, 8, 8, generator=gen),
        "speed": torch.rand(B, F, generator=gen) * 5,
        "reference": torch.randn(1, 4, 8, 8, generator=gen),
    }


def frame_by_frame(unet: UNet2D, sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.stack([unet(sample[:, :, i], t) for i in range(sample.shape[2])], dim=2)


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        {
            **CONFIG,
            "layers_per_block": 2,
            "use_linear_projection": True,
            "attention_head_dim": (2, 8),
            "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        },
    ],
    ids=["conv-1layer", "linear-2layers"],
)
def test_backbone_fresh_equals_unet_per_frame(config: dict[str, Any]) -> None:
    unet = perturbed_unet(config)
    backbone = Backbone.from_unet2d(unet, **NEW).eval()
    refnet = ReferenceNet.from_unet2d(unet).eval()
    data = inputs()
    t = torch.tensor([5, 700])
    with torch.no_grad():
        motion = refnet.motion_features(data["motion"])
        got = backbone(
            data["sample"],
            t,
            audio_tokens=data["audio"],
            motion_features=motion,
            speed=data["speed"],
        )
        expected = frame_by_frame(unet, data["sample"], t)
    assert got.shape == (B, 4, F, 8, 8)
    assert (got - expected).abs().max().item() <= 1e-5


def test_backbone_reference_of_itself_changes_nothing() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW).eval()
    refnet = ReferenceNet.from_unet2d(unet).eval()
    latent = inputs()["reference"]
    with torch.no_grad():
        own = refnet(latent, 10)
        with_ref = backbone(latent[:, :, None], 10, reference_features=own)
        without = backbone(latent[:, :, None], 10)
        other = backbone(latent[:, :, None], 10, reference_features=refnet(latent.flip(-1), 10))
    # Duplicated keys/values leave every softmax average unchanged.
    assert (with_ref - without).abs().max().item() <= 1e-5
    # A different reference does change the output.
    assert (other - without).abs().max().item() > 1e-3


def test_backbone_reference_batch_broadcast() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW).eval()
    refnet = ReferenceNet.from_unet2d(unet).eval()
    data = inputs()
    with torch.no_grad():
        ref1 = refnet(data["reference"], 0)
        a = backbone(data["sample"], 3, reference_features=ref1)
        b = backbone(data["sample"], 3, reference_features=ref1.repeat_interleave(B))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _activate(backbone: Backbone, marker: str) -> None:
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if marker in name:
                p.copy_(torch.randn_like(p) * 0.1)


def test_backbone_audio_attention_is_per_frame() -> None:
    backbone = Backbone.from_unet2d(perturbed_unet(), **NEW, use_motion_modules=False).eval()
    _activate(backbone, "audio_attn.to_out")
    data = inputs()
    audio = data["audio"]
    changed = audio.clone()
    changed[:, 1] += 1.0
    with torch.no_grad():
        a = backbone(data["sample"], 3, audio_tokens=audio)
        b = backbone(data["sample"], 3, audio_tokens=changed)
        silent = backbone(data["sample"], 3)
    diff = (a - b).abs().amax(dim=(0, 1, 3, 4))
    assert diff[1] > 1e-4
    assert diff[0] == 0 and diff[2] == 0  # no temporal modules: frames stay independent
    assert (a - silent).abs().max() > 1e-4


def test_backbone_motion_and_speed_reach_the_temporal_modules() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW).eval()
    refnet = ReferenceNet.from_unet2d(unet).eval()
    _activate(backbone, "temporal_transformer.proj_out")
    _activate(backbone, "speed_attention.to_out")
    data = inputs()
    with torch.no_grad():
        motion = refnet.motion_features(data["motion"])
        base = backbone(data["sample"], 3, motion_features=motion, speed=data["speed"])
        no_motion = backbone(data["sample"], 3, speed=data["speed"])
        other_speed = backbone(data["sample"], 3, motion_features=motion, speed=data["speed"] + 3)
        other_motion = backbone(
            data["sample"],
            3,
            motion_features=refnet.motion_features(data["motion"].flip(2)),
            speed=data["speed"],
        )
    for variant in (no_motion, other_speed, other_motion):
        assert (variant - base).abs().max() > 1e-4


def test_backbone_gradient_checkpointing_same_gradients() -> None:
    torch.manual_seed(0)
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW)
    refnet = ReferenceNet.from_unet2d(unet)
    _activate(backbone, "audio_attn.to_out")
    _activate(backbone, "temporal_transformer.proj_out")
    data = {k: v[:1] for k, v in inputs().items()}

    def loss() -> torch.Tensor:
        ref = refnet(data["reference"], 0)
        out = backbone(
            data["sample"],
            7,
            reference_features=ref,
            audio_tokens=data["audio"],
            motion_features=refnet.motion_features(data["motion"]),
            speed=data["speed"],
        )
        return out.square().mean()

    loss().backward()
    models = {"b": backbone, "r": refnet}
    plain = {
        (k, n): p.grad.clone()
        for k, m in models.items()
        for n, p in m.named_parameters()
        if p.grad is not None
    }
    assert any(k == "r" for k, _ in plain)  # gradients reach the ReferenceNet
    for m in models.values():
        m.zero_grad()
        m.enable_gradient_checkpointing()
    loss().backward()
    for (k, n), grad in plain.items():
        p = dict(models[k].named_parameters())[n]
        assert p.grad is not None
        torch.testing.assert_close(p.grad, grad, rtol=1e-4, atol=1e-6)


def test_backbone_bf16() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW).eval().to(torch.bfloat16)
    refnet = ReferenceNet.from_unet2d(unet).eval().to(torch.bfloat16)
    data = {k: v.to(torch.bfloat16) for k, v in inputs().items()}
    with torch.no_grad():
        out = backbone(
            data["sample"],
            3,
            reference_features=refnet(data["reference"], 0),
            audio_tokens=data["audio"],
            motion_features=refnet.motion_features(data["motion"]),
            speed=data["speed"],
        )
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()


@pytest.mark.slow
def test_backbone_traces_without_graph_breaks() -> None:
    # fullgraph=True fails on any graph break: no data-dependent Python branching.
    backbone = Backbone.from_unet2d(perturbed_unet(), **NEW).eval()
    data = inputs()
    refnet = ReferenceNet.from_unet2d(perturbed_unet()).eval()
    with torch.no_grad():
        ref = refnet(data["reference"], 0)
        motion = refnet.motion_features(data["motion"])
    kwargs = {
        "audio_tokens": data["audio"],
        "reference_features": ref,
        "motion_features": motion,
        "speed": data["speed"],
    }
    compiled = torch.compile(backbone, backend="eager", fullgraph=True)
    with torch.no_grad():
        got = compiled(data["sample"], 3, **kwargs)
        expected = backbone(data["sample"], 3, **kwargs)
    torch.testing.assert_close(got, expected)


def test_backbone_motion_module_roundtrip() -> None:
    unet = perturbed_unet()
    source = Backbone.from_unet2d(unet, **NEW)
    _activate(source, "motion_modules")
    state = {k: v for k, v in source.state_dict().items() if ".motion_modules." in k}
    target = Backbone.from_unet2d(unet, **NEW)
    report = target.load_motion_modules(state)
    assert not report.unexpected_keys
    for key, value in state.items():
        assert torch.equal(target.state_dict()[key], value), key


def test_backbone_bad_inputs() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW).eval()
    refnet = ReferenceNet.from_unet2d(unet).eval()
    data = inputs()
    x = data["sample"]
    with pytest.raises(InputError, match=r"\(b, c, f, h, w\)"):
        backbone(x[:, :, 0], 1)
    with pytest.raises(InputError, match="audio_tokens"):
        backbone(x, 1, audio_tokens=torch.randn(B, F + 1, 4, 16))
    with pytest.raises(InputError, match="speed"):
        backbone(x, 1, speed=torch.rand(B, F, 1))
    with pytest.raises(InputError, match="motion"):
        backbone(x, 1, motion_features=refnet.motion_features(torch.randn(3, 4, N, 8, 8)))
    with pytest.raises(InputError, match="MotionFeatures"):
        backbone(x, 1, motion_features=refnet(torch.randn(B * N, 4, 8, 8)))  # type: ignore[arg-type]
    plain_blocks = {"down_block_types": ("DownBlock2D",) * 2, "up_block_types": ("UpBlock2D",) * 2}
    other = ReferenceNet(**{**CONFIG, **plain_blocks})
    with pytest.raises(InputError, match="reference_features"):
        backbone(x, 1, reference_features=other(torch.randn(1, 4, 8, 8)))
    wider = ReferenceNet(**{**CONFIG, "block_out_channels": (64, 64)})
    with pytest.raises(InputError, match="same config"):
        backbone(x, 1, reference_features=wider(torch.randn(1, 4, 8, 8)))
    plain = Backbone.from_unet2d(unet, audio_cross_attention_dim=None, speed_embed_dim=None)
    with pytest.raises(InputError, match="audio"):
        plain(x, 1, audio_tokens=data["audio"])
    with pytest.raises(InputError, match="speed"):
        plain(x, 1, speed=data["speed"])


def test_backbone_save_load_and_channels_last(tmp_path: Any) -> None:
    backbone = Backbone.from_unet2d(perturbed_unet(), **NEW).eval()
    _activate(backbone, "audio_attn.to_out")
    _activate(backbone, "temporal_transformer.proj_out")
    backbone.save_pretrained(tmp_path / "backbone")
    again = Backbone.from_pretrained(tmp_path / "backbone").eval()
    assert again.config["audio_cross_attention_dim"] == 16
    data = inputs()
    kwargs = {"audio_tokens": data["audio"], "speed": data["speed"]}
    with torch.no_grad():
        expected = backbone(data["sample"], 3, **kwargs)
        assert torch.equal(again(data["sample"], 3, **kwargs), expected)
        again.to(memory_format=torch.channels_last)
        got = again(data["sample"].to(memory_format=torch.channels_last_3d), 3, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_backbone_from_unet2d_copies_weights() -> None:
    unet = perturbed_unet()
    backbone = Backbone.from_unet2d(unet, **NEW)
    refnet = ReferenceNet.from_unet2d((dict(unet.config), unet.state_dict()))
    assert not any(p.is_meta for p in backbone.parameters())
    assert all(p.requires_grad for p in backbone.parameters())
    before = unet.conv_in.weight.detach().clone()
    with torch.no_grad():
        backbone.conv_in.weight.add_(1.0)
        refnet.conv_in.weight.add_(2.0)
    assert torch.equal(unet.conv_in.weight, before)  # no tensor is shared with the source
    assert torch.equal(backbone.conv_in.weight, before + 1.0)


def test_backbone_reference_attention_is_attention_over_concatenated_tokens() -> None:
    from emo.models.attention import Attention

    torch.manual_seed(0)
    attn = Attention(16, heads=2, dim_head=8).eval()
    tokens = torch.randn(B * F, 10, 16)
    for ref_batch in (1, B):
        ref = torch.randn(ref_batch, 6, 16)
        per_frame = ref.expand(B, -1, -1).repeat_interleave(F, dim=0)
        with torch.no_grad():
            got = attn(tokens, None, ref, F)
            expected = attn(tokens, torch.cat([tokens, per_frame], dim=1))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
