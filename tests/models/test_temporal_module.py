"""TemporalModule: AnimateDiff layout, diffusers parity, motion frames, speed, errors."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.loaders.animatediff import convert_motion_module_state_dict
from emo.models.temporal import TemporalModule, sinusoidal_positions

C, HEADS, GROUPS = 32, 4, 8


def _randomise(module: nn.Module, seed: int = 0, std: float = 0.2) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std + (1.0 if "norm" in name else 0.0))


def _diffusers_module(max_len: int = 32) -> nn.Module:
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    return AnimateDiffTransformer3D(
        num_attention_heads=HEADS,
        attention_head_dim=C // HEADS,
        in_channels=C,
        num_layers=1,
        norm_num_groups=GROUPS,
        activation_fn="geglu",
        double_self_attention=True,
        positional_embeddings="sinusoidal",
        num_positional_embeddings=max_len,
    ).eval()


def _run_diffusers(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, f = x.shape[0], x.shape[2]
    out = module(rearrange(x, "b c f h w -> (b f) c h w"), num_frames=f)
    return rearrange(out, "(b f) c h w -> b c f h w", b=b)


def test_parameter_names_follow_original_animatediff_layout() -> None:
    keys = set(TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS).state_dict())
    prefix = "temporal_transformer.transformer_blocks.0."
    expected = {
        "temporal_transformer.norm.weight",
        "temporal_transformer.proj_in.weight",
        "temporal_transformer.proj_out.bias",
        prefix + "attention_blocks.0.to_q.weight",
        prefix + "attention_blocks.1.to_k.weight",
        prefix + "attention_blocks.1.to_v.weight",
        prefix + "attention_blocks.0.to_out.0.weight",
        prefix + "attention_blocks.0.to_out.0.bias",
        prefix + "attention_blocks.0.pos_encoder.pe",
        prefix + "attention_blocks.1.pos_encoder.pe",
        prefix + "norms.0.weight",
        prefix + "norms.1.bias",
        prefix + "ff.net.0.proj.weight",
        prefix + "ff.net.2.weight",
        prefix + "ff_norm.weight",
    }
    assert expected <= keys
    assert not any("speed" in k for k in keys)
    assert prefix + "attention_blocks.0.to_q.bias" not in keys
    with_speed = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=6
    )
    speed_keys = {k for k in with_speed.state_dict() if "speed" in k}
    assert speed_keys == {
        prefix + "speed_norm.weight",
        prefix + "speed_norm.bias",
        prefix + "speed_attention.to_q.weight",
        prefix + "speed_attention.to_k.weight",
        prefix + "speed_attention.to_v.weight",
        prefix + "speed_attention.to_out.0.weight",
        prefix + "speed_attention.to_out.0.bias",
    }
    assert with_speed.state_dict()[prefix + "speed_attention.to_k.weight"].shape == (C, 6)
    pe = with_speed.state_dict()[prefix + "attention_blocks.0.pos_encoder.pe"]
    assert pe.shape == (1, 32, C)
    torch.testing.assert_close(pe, sinusoidal_positions(32, C))


def test_matches_diffusers_animatediff_transformer() -> None:
    reference = _diffusers_module()
    _randomise(reference)
    ours = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, norm_across_frames=True
    ).eval()
    report = ours.load_state_dict(convert_motion_module_state_dict(reference.state_dict()))
    assert not report.missing_keys and not report.unexpected_keys
    x = torch.randn(2, C, 7, 3, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _run_diffusers(reference, x)
        got = ours(x)
    assert (expected - x).abs().max() > 0.1  # the comparison is not trivial
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_motion_frames_equal_full_sequence_attention() -> None:
    # Prepending n motion frames == running the diffusers module on n + f frames and
    # keeping the last f (the residual is on the current frames only).
    reference = _diffusers_module()
    _randomise(reference, seed=3)
    ours = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, norm_across_frames=True
    )
    ours.load_state_dict(convert_motion_module_state_dict(reference.state_dict()))
    gen = torch.Generator().manual_seed(2)
    x, motion = torch.randn(2, C, 6, 2, 3, generator=gen), torch.randn(2, C, 4, 2, 3, generator=gen)
    with torch.no_grad():
        full = _run_diffusers(reference, torch.cat([motion, x], dim=2))[:, :, 4:]
        got = ours(x, motion)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=0)


def test_per_frame_norm_is_the_default_and_keeps_frames_independent() -> None:
    # With the attention outputs at zero, only norm/proj_in/ff/proj_out act, token-wise:
    # per-frame GroupNorm (original AnimateDiff) makes frame 0 independent of frame 1;
    # statistics across frames (diffusers) do not.
    module = TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS)
    assert module.norm_across_frames is False
    _randomise(module, seed=4)
    with torch.no_grad():
        for block in module.temporal_transformer.transformer_blocks:
            for attention in block.attention_blocks:
                attention.to_out[0].weight.zero_()
                attention.to_out[0].bias.zero_()
    x = torch.randn(1, C, 2, 3, 3)
    y = x.clone()
    y[:, :, 1] *= 5.0
    with torch.no_grad():
        torch.testing.assert_close(module(x)[:, :, 0], module(y)[:, :, 0])
        module.norm_across_frames = True
        assert not torch.allclose(module(x)[:, :, 0], module(y)[:, :, 0])


def test_fresh_module_is_identity_with_motion_and_speed() -> None:
    module = TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=8)
    x = torch.randn(2, C, 5, 4, 4)
    motion = torch.randn(2, C, 3, 4, 4)
    speed = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(module(x), x)
        assert torch.equal(module(x, motion), x)
        assert torch.equal(module(x, motion, speed), x)


def test_motion_frames_and_speed_change_output_once_trained() -> None:
    module = TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=8)
    _randomise(module, seed=5)
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(2, C, 5, 2, 2, generator=gen)
    motion = torch.randn(2, C, 3, 2, 2, generator=gen)
    speed = torch.randn(2, 5, 8, generator=gen)
    with torch.no_grad():
        plain = module(x)
        with_motion = module(x, motion)
        with_speed = module(x, speed_embedding=speed)
        empty_motion = module(x, motion[:, :, :0])
        broadcast = module(x, motion[:1].expand(2, -1, -1, -1, -1))
        broadcast_1 = module(x, motion[:1])
    assert plain.shape == with_motion.shape == with_speed.shape == x.shape
    assert (plain - with_motion).abs().max() > 1e-3
    assert (plain - with_speed).abs().max() > 1e-3
    torch.testing.assert_close(empty_motion, plain)
    torch.testing.assert_close(broadcast, broadcast_1)


def _silence_self_attention_and_ff(module: TemporalModule) -> None:
    with torch.no_grad():
        for block in module.temporal_transformer.transformer_blocks:
            for attention in block.attention_blocks:
                attention.to_out[0].weight.zero_()
                attention.to_out[0].bias.zero_()
            block.ff.net[2].weight.zero_()
            block.ff.net[2].bias.zero_()


@pytest.mark.parametrize("n", [0, 2])
def test_speed_cross_attention_values(n: int) -> None:
    # With the self-attentions and the feed-forward silenced, the module computes
    # x + proj_out(t + speed_attention(t)) with t = proj_in(norm(x)), per pixel; the speed
    # attention is written out here by hand: frame i attends to the f speed vectors, with
    # sinusoidal positions n + i on the query input and on the projected keys.
    d, f, b, h, w = 6, 4, 2, 2, 3
    module = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=d
    ).double()
    _randomise(module, seed=7)
    _silence_self_attention_and_ff(module)
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(b, C, f, h, w, generator=gen, dtype=torch.float64)
    motion = torch.randn(1, C, n, h, w, generator=gen, dtype=torch.float64)
    speed = torch.randn(1, f, d, generator=gen, dtype=torch.float64)  # batch 1: shared
    tt = module.temporal_transformer
    block = tt.transformer_blocks[0]
    attn = block.speed_attention
    with torch.no_grad():
        got = module(x, motion if n else None, speed)
        normed = torch.stack([tt.norm(x[:, :, i]) for i in range(f)], dim=2)  # per frame
        tokens = tt.proj_in(rearrange(normed, "b c f h w -> b h w f c"))
        pe = sinusoidal_positions(32, C)[0, n : n + f].double()
        q = attn.to_q(block.speed_norm(tokens) + pe)
        k = attn.to_k(speed[0]) + pe  # (f, c)
        v = attn.to_v(speed[0])
        hd = C // HEADS
        q = q.reshape(b, h, w, f, HEADS, hd)
        k, v = k.reshape(f, HEADS, hd), v.reshape(f, HEADS, hd)
        weights = torch.einsum("bhwine,jne->bhwnij", q, k).div(hd**0.5).softmax(dim=-1)
        mixed = torch.einsum("bhwnij,jne->bhwine", weights, v).reshape(b, h, w, f, C)
        added = attn.to_out[0](mixed)
        expected = x + rearrange(tt.proj_out(tokens + added), "b h w f c -> b c f h w")
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    # The speed does reach the output, and differently per frame.
    with torch.no_grad():
        other = module(x, motion if n else None, speed.flip(1))
    assert (other - got).abs().amax(dim=(0, 1, 3, 4)).min() > 1e-4


def test_fresh_module_gradients_have_their_analytic_values() -> None:
    # out = x + proj_out(u): with proj_out at zero, dL/dW_out = sum_tokens g u^T and
    # nothing upstream of proj_out gets a gradient yet (d out / d u = W_out = 0).
    module = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=4
    ).double()
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(1, C, 3, 2, 2, generator=gen, dtype=torch.float64)
    motion = torch.randn(1, C, 2, 2, 2, generator=gen, dtype=torch.float64)
    speed = torch.randn(1, 3, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(1, C, 3, 2, 2, generator=gen, dtype=torch.float64)
    tt = module.temporal_transformer
    entering: list[torch.Tensor] = []
    handle = tt.proj_out.register_forward_hook(lambda m, a, o: entering.append(a[0].detach()))
    (module(x, motion, speed) * weight).sum().backward()
    handle.remove()
    u = entering[0]  # ((b h w), f, c)
    g = rearrange(weight, "b c f h w -> (b h w) f c")
    assert tt.proj_out.weight.grad is not None and tt.proj_out.bias.grad is not None
    torch.testing.assert_close(tt.proj_out.weight.grad, torch.einsum("sfo,sfi->oi", g, u))
    torch.testing.assert_close(tt.proj_out.bias.grad, g.sum(dim=(0, 1)))
    assert tt.proj_in.weight.grad is not None
    assert torch.count_nonzero(tt.proj_in.weight.grad) == 0


def test_gradients_equal_finite_differences() -> None:
    # Every part a trained module uses, speed attention included, gets the gradient
    # its finite difference predicts (float64, central differences).
    module = TemporalModule(
        C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=4
    ).double()
    _randomise(module, seed=10)
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(1, C, 3, 2, 2, generator=gen, dtype=torch.float64)
    motion = torch.randn(1, C, 2, 2, 2, generator=gen, dtype=torch.float64)
    speed = torch.randn(1, 3, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(1, C, 3, 2, 2, generator=gen, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return (module(x, motion, speed) * weight).sum()

    loss().backward()
    params = dict(module.named_parameters())
    prefix = "temporal_transformer.transformer_blocks.0."
    for name in (
        "temporal_transformer.proj_in.weight",
        prefix + "attention_blocks.0.to_k.weight",
        prefix + "speed_attention.to_k.weight",
        prefix + "speed_attention.to_out.0.weight",
        prefix + "ff.net.0.proj.weight",
    ):
        param = params[name]
        assert param.grad is not None, name
        direction = torch.randn(param.shape, generator=gen, dtype=torch.float64)
        eps = 1e-6
        with torch.no_grad():
            param.add_(eps * direction)
            up = loss()
            param.sub_(2 * eps * direction)
            down = loss()
            param.add_(eps * direction)
        numeric = ((up - down) / (2 * eps)).item()
        analytic = (param.grad * direction).sum().item()
        assert abs(analytic) > 1e-3, name  # the parameter matters
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), name


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.zeros(1, C, 4, 2),), "hidden_states"),
        ((torch.zeros(1, C + 1, 4, 2, 2),), "hidden_states"),
        ((torch.zeros(1, C, 4, 2, 2), torch.zeros(1, C, 2, 3, 2)), "motion_states"),
        ((torch.zeros(2, C, 4, 2, 2), torch.zeros(3, C, 2, 2, 2)), "motion_states"),
        ((torch.zeros(1, C, 30, 2, 2), torch.zeros(1, C, 4, 2, 2)), "max_positions"),
        ((torch.zeros(1, C, 4, 2, 2), None, torch.zeros(1, 3, 8)), "speed_embedding"),
    ],
)
def test_bad_inputs_raise_input_error(args: tuple[torch.Tensor | None, ...], match: str) -> None:
    module = TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS, speed_embed_dim=8)
    with pytest.raises(InputError, match=match):
        module(*args)


def test_speed_without_speed_attention_and_bad_configs() -> None:
    module = TemporalModule(C, num_attention_heads=HEADS, norm_num_groups=GROUPS)
    with pytest.raises(InputError, match="speed_embed_dim"):
        module(torch.zeros(1, C, 2, 2, 2), speed_embedding=torch.zeros(1, 2, 4))
    with pytest.raises(ConfigError):
        TemporalModule(30, num_attention_heads=4)
    with pytest.raises(ConfigError):
        TemporalModule(C, num_attention_heads=4, norm_num_groups=5)
    with pytest.raises(ConfigError):
        TemporalModule(C, num_attention_heads=4, norm_num_groups=8, max_positions=0)
