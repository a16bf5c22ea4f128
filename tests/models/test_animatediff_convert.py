"""AnimateDiff motion-module conversion and loading (diffusers MotionAdapter as the oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from einops import rearrange
from torch import nn

from emo.errors import CheckpointError
from emo.loaders.animatediff import (
    convert_motion_module_state_dict,
    detect_motion_module_layout,
    load_motion_module_weights,
    motion_module_state_dict_to_diffusers,
    resize_positional_table,
)
from emo.models.temporal import TemporalModule, sinusoidal_positions

CHANNELS = (32, 64)
HEADS = 2
GROUPS = 8
LAYERS = 1  # motion modules per down block (up blocks get LAYERS + 1)


def _adapter(max_len: int = 32) -> nn.Module:
    from diffusers import MotionAdapter

    adapter = MotionAdapter(
        block_out_channels=CHANNELS,
        motion_layers_per_block=LAYERS,
        motion_num_attention_heads=HEADS,
        motion_norm_num_groups=GROUPS,
        motion_max_seq_length=max_len,
    ).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return adapter


class _Block(nn.Module):
    def __init__(self, channels: int, count: int, **kwargs: object) -> None:
        super().__init__()
        self.motion_modules = nn.ModuleList(
            [
                TemporalModule(
                    channels, num_attention_heads=HEADS, norm_num_groups=GROUPS, **kwargs
                )  # type: ignore[arg-type]
                for _ in range(count)
            ]
        )


class _MotionStack(nn.Module):
    """Temporal modules placed where a UNet (e.g. the Backbone) places them."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList([_Block(c, LAYERS, **kwargs) for c in CHANNELS])
        self.mid_block = _Block(CHANNELS[-1], 1, **kwargs)
        self.up_blocks = nn.ModuleList(
            [_Block(c, LAYERS + 1, **kwargs) for c in reversed(CHANNELS)]
        )
        self.conv = nn.Conv2d(3, 3, 1)  # a non-motion parameter that must stay untouched


class _Wrapper(nn.Module):
    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.backbone = _MotionStack(**kwargs)


def _pairs(adapter: nn.Module, stack: _MotionStack) -> list[tuple[nn.Module, TemporalModule]]:
    pairs = []
    for theirs_block, ours_block in [
        *zip(adapter.down_blocks, stack.down_blocks, strict=True),
        (adapter.mid_block, stack.mid_block),
        *zip(adapter.up_blocks, stack.up_blocks, strict=True),
    ]:
        pairs += list(zip(theirs_block.motion_modules, ours_block.motion_modules, strict=True))
    return pairs


def _run_diffusers(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, f = x.shape[0], x.shape[2]
    out = module(rearrange(x, "b c f h w -> (b f) c h w"), num_frames=f)
    return rearrange(out, "(b f) c h w -> b c f h w", b=b)


def test_motion_adapter_weights_load_and_match_diffusers() -> None:
    adapter = _adapter()
    stack = _Wrapper(norm_across_frames=True, speed_embed_dim=4)
    conv_before = stack.backbone.conv.weight.detach().clone()
    report = load_motion_module_weights(stack, adapter.state_dict(), strict=True)
    assert report.unexpected_keys == ()
    assert report.missing_keys and all(
        ".speed_attention." in k or ".speed_norm." in k for k in report.missing_keys
    )
    assert all(k.startswith("backbone.") for k in report.missing_keys)
    assert torch.equal(stack.backbone.conv.weight, conv_before)
    gen = torch.Generator().manual_seed(1)
    pairs = _pairs(adapter, stack.backbone)
    assert len(pairs) == 2 * LAYERS + 1 + 2 * (LAYERS + 1)
    for theirs, ours in pairs:
        x = torch.randn(1, ours.in_channels, 5, 2, 3, generator=gen)
        with torch.no_grad():
            expected = _run_diffusers(theirs, x)
            got = ours(x)
        assert (expected - x).abs().max() > 1e-2
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_layout_round_trip() -> None:
    diffusers_sd = _adapter().state_dict()
    assert detect_motion_module_layout(diffusers_sd) == "diffusers"
    ours = convert_motion_module_state_dict(diffusers_sd)
    assert detect_motion_module_layout(ours) == "original"
    assert (
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0."
        "attention_blocks.1.pos_encoder.pe" in ours
    )
    assert (
        "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.weight"
        in ours
    )
    assert "up_blocks.1.motion_modules.1.temporal_transformer.proj_out.weight" in ours
    back = motion_module_state_dict_to_diffusers(ours)
    assert set(back) == set(diffusers_sd)
    for key, value in diffusers_sd.items():
        assert torch.equal(back[key], value), key
    # And the original layout is a fixed point of convert.
    again = convert_motion_module_state_dict(ours)
    assert set(again) == set(ours)
    # Our own modules' state dicts convert to diffusers too (speed_proj left out).
    stack = _MotionStack(speed_embed_dim=4)
    exported = motion_module_state_dict_to_diffusers(stack.state_dict())
    assert not any("speed_proj" in k or "conv" in k for k in exported)
    assert set(exported) == set(diffusers_sd)


def test_original_checkpoint_file_with_wrapper_prefix_and_v1_table(tmp_path: Path) -> None:
    # An original-layout .ckpt as written by training code: {"state_dict": ...} with a
    # DDP "module." prefix, 24 positions (AnimateDiff v1), non-motion keys mixed in.
    adapter = _adapter()
    original = convert_motion_module_state_dict(adapter.state_dict())
    for key in original:
        if key.endswith("pe"):
            original[key] = sinusoidal_positions(24, original[key].shape[-1])
    wrapped = {"module." + k: v for k, v in original.items()}
    wrapped["module.conv_in.weight"] = torch.zeros(3)
    path = tmp_path / "mm_sd_v14.ckpt"
    torch.save({"state_dict": wrapped}, path)

    stack = _MotionStack(norm_across_frames=True)
    report = load_motion_module_weights(stack, path, strict=True)
    assert report.ok
    pe = (
        stack.down_blocks[0]
        .motion_modules[0]
        .state_dict()["temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"]
    )
    assert pe.shape == (1, 32, CHANNELS[0])
    theirs = adapter.down_blocks[1].motion_modules[0]
    ours = stack.down_blocks[1].motion_modules[0]
    x = torch.randn(1, CHANNELS[1], 4, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), _run_diffusers(theirs, x), atol=1e-5, rtol=0)

    # The same through safetensors.
    from safetensors.torch import save_file

    st = tmp_path / "mm.safetensors"
    save_file({k: v.contiguous() for k, v in original.items()}, str(st))
    assert load_motion_module_weights(_MotionStack(), st).ok


def test_single_module_state_dicts_convert() -> None:
    adapter = _adapter()
    theirs = adapter.down_blocks[0].motion_modules[0]
    ours = TemporalModule(CHANNELS[0], num_attention_heads=HEADS, norm_num_groups=GROUPS)
    report = load_motion_module_weights(ours, theirs.state_dict(), strict=True)
    assert report.ok


def test_positional_table_resizing() -> None:
    pe = sinusoidal_positions(24, 16)
    torch.testing.assert_close(resize_positional_table(pe, 32), sinusoidal_positions(32, 16))
    torch.testing.assert_close(resize_positional_table(pe, 8), sinusoidal_positions(8, 16))
    assert resize_positional_table(pe, 24) is pe
    half = resize_positional_table(pe.half(), 32)  # fp16 checkpoints are recognised too
    assert half.dtype == torch.float16 and half.shape == (1, 32, 16)
    with pytest.raises(CheckpointError, match="not the standard sinusoid"):
        resize_positional_table(torch.randn(1, 24, 16), 32)
    converted = convert_motion_module_state_dict(_adapter().state_dict(), max_positions=16)
    assert all(v.shape[1] == 16 for k, v in converted.items() if k.endswith(".pe"))


def test_errors_are_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no AnimateDiff motion-module"):
        convert_motion_module_state_dict({"conv_in.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_motion_module_weights(_MotionStack(), tmp_path / "missing.ckpt")
    # Learned (non-sinusoid) table of another length.
    sd = convert_motion_module_state_dict(_adapter().state_dict())
    key = (
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0."
        "attention_blocks.0.pos_encoder.pe"
    )
    sd[key] = torch.randn(1, 24, CHANNELS[0])
    with pytest.raises(CheckpointError, match="max_positions=24"):
        load_motion_module_weights(_MotionStack(), sd)
    # Channel mismatch (e.g. an SDXL module into an SD1.5 backbone).
    from diffusers import MotionAdapter

    wide = MotionAdapter(
        block_out_channels=(64, 64),
        motion_layers_per_block=LAYERS,
        motion_num_attention_heads=HEADS,
        motion_norm_num_groups=GROUPS,
    )
    with pytest.raises(CheckpointError, match="do not fit"):
        load_motion_module_weights(_MotionStack(), wide.state_dict())
    # A model without motion modules.
    with pytest.raises(CheckpointError, match="no motion modules"):
        load_motion_module_weights(nn.Linear(2, 2), sd)


def test_strict_reports_missing_and_unexpected() -> None:
    sd = convert_motion_module_state_dict(_adapter().state_dict())
    partial = {k: v for k, v in sd.items() if not k.startswith("up_blocks.1.")}
    partial["down_blocks.5.motion_modules.0.temporal_transformer.norm.weight"] = torch.ones(4)
    report = load_motion_module_weights(_MotionStack(), partial)
    assert any(k.startswith("up_blocks.1.") for k in report.missing_keys)
    assert report.unexpected_keys == (
        "down_blocks.5.motion_modules.0.temporal_transformer.norm.weight",
    )
    with pytest.raises(CheckpointError, match="strict=False"):
        load_motion_module_weights(_MotionStack(), partial, strict=True)


def test_loads_into_the_backbone() -> None:
    from emo.models.backbone import Backbone

    backbone = Backbone(
        sample_size=8,
        block_out_channels=CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=LAYERS,
        attention_head_dim=8,
        cross_attention_dim=16,
        norm_num_groups=GROUPS,
        audio_cross_attention_dim=16,
        motion_num_attention_heads=HEADS,
        motion_norm_across_frames=True,
        speed_embed_dim=8,
    )
    adapter = _adapter()
    report = load_motion_module_weights(backbone, adapter.state_dict(), strict=True)
    assert report.unexpected_keys == ()
    # The speed cross-attention of 7 modules: norm (2), to_q/k/v, to_out (2).
    assert len(report.missing_keys) == 7 * 7
    assert all(".speed_" in k for k in report.missing_keys)
    x = torch.randn(1, CHANNELS[1], 3, 2, 2)
    theirs = adapter.up_blocks[0].motion_modules[1]
    ours = backbone.up_blocks[0].motion_modules[1]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), _run_diffusers(theirs, x), atol=1e-5, rtol=0)
