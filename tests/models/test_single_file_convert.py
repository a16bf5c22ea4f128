"""Single-file (LDM/CompVis layout) Stable Diffusion checkpoints <-> diffusers layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch
from diffusers.loaders import single_file_utils
from safetensors.torch import save_file

from emo.errors import CheckpointError
from emo.loaders.single_file import (
    SD15_VAE_CONFIG,
    convert_ldm_unet_state_dict,
    convert_ldm_vae_state_dict,
    load_ldm_vae_single_file,
    load_sd15_single_file,
    sd15_unet_config,
    to_ldm_unet_state_dict,
    to_ldm_vae_state_dict,
)
from emo.models.vae import AutoencoderKL

# SD 1.x shaped (attention in all but the lowest level, layers_per_block=2), but tiny.
TINY_UNET: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (8, 16, 16),
    "layers_per_block": 2,
    "attention_head_dim": 2,
    "cross_attention_dim": 16,
    "norm_num_groups": 4,
}
# Four levels like SD, so the SD 1.x VAE config's level count applies.
TINY_VAE: dict[str, Any] = {
    "block_out_channels": (8, 8, 16, 16),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "latent_channels": 4,
    "sample_size": 32,
}


def _randomised(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=gen) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def unet_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    unet = diffusers.UNet2DConditionModel(**TINY_UNET)
    return dict(unet.config), _randomised(unet)


@pytest.fixture(scope="module")
def vae_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    vae = diffusers.AutoencoderKL(**TINY_VAE)
    return dict(vae.config), _randomised(vae)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def test_unet_round_trip_and_diffusers_oracle(
    unet_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> None:
    config, state = unet_state
    ldm = to_ldm_unet_state_dict(state, config)
    assert all(k.startswith("model.diffusion_model.") for k in ldm)
    # Known LDM names: downsamplers at input_blocks.{3,6}.0.op; the first up block has
    # no attention, so its upsampler is output_blocks.2.1.conv, the next one's .2.conv.
    for name in (
        "input_blocks.0.0.weight",
        "input_blocks.3.0.op.weight",
        "input_blocks.6.0.op.bias",
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
        "input_blocks.4.0.skip_connection.weight",
        "middle_block.1.proj_in.weight",
        "middle_block.2.emb_layers.1.weight",
        "output_blocks.2.1.conv.weight",
        "output_blocks.5.2.conv.weight",
        "output_blocks.8.1.norm.weight",
        "time_embed.2.weight",
        "out.2.bias",
    ):
        assert "model.diffusion_model." + name in ldm, name
    checkpoint = {**ldm, "cond_stage_model.transformer.x": torch.zeros(1)}
    _assert_same(convert_ldm_unet_state_dict(checkpoint, config), state)
    _assert_same(convert_ldm_unet_state_dict(checkpoint), state)  # layers_per_block inferred
    oracle = single_file_utils.convert_ldm_unet_checkpoint(dict(checkpoint), config)
    _assert_same(oracle, state)


def test_vae_round_trip_and_diffusers_oracle(
    vae_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> None:
    config, state = vae_state
    ldm = to_ldm_vae_state_dict(state)
    for name in (
        "encoder.down.0.block.0.norm1.weight",
        "encoder.down.2.block.0.nin_shortcut.weight",
        "decoder.up.1.block.0.nin_shortcut.weight",
        "encoder.down.2.downsample.conv.weight",
        "encoder.norm_out.bias",
        "decoder.up.3.block.1.conv2.weight",
        "decoder.up.3.upsample.conv.weight",
        "decoder.mid.block_2.norm2.weight",
        "quant_conv.weight",
    ):
        assert "first_stage_model." + name in ldm, name
    q = ldm["first_stage_model.encoder.mid.attn_1.q.weight"]
    assert q.shape == (16, 16, 1, 1)  # 1x1 convolution, as in the original files
    assert "first_stage_model.decoder.up.0.upsample.conv.weight" not in ldm
    checkpoint = {**ldm, "model.diffusion_model.out.2.bias": torch.zeros(4)}
    _assert_same(convert_ldm_vae_state_dict(checkpoint), state)
    _assert_same(convert_ldm_vae_state_dict(checkpoint, num_up_blocks=4), state)
    oracle = single_file_utils.convert_ldm_vae_checkpoint(dict(checkpoint), config)
    _assert_same(oracle, state)


def test_full_sd15_layout_on_meta() -> None:
    """The real SD 1.5 key set (meta tensors, no memory): our mapping agrees with diffusers'."""
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**sd15_unet_config())
        vae = diffusers.AutoencoderKL(**SD15_VAE_CONFIG)
    unet_sd, vae_sd = unet.state_dict(), vae.state_dict()
    ldm_unet = to_ldm_unet_state_dict(unet_sd)
    ldm_vae = to_ldm_vae_state_dict(vae_sd)
    assert len(ldm_unet) == len(unet_sd) == 686
    assert len(ldm_vae) == len(vae_sd) == 248
    prefix = "model.diffusion_model."
    for name in (
        "input_blocks.9.0.op.weight",
        "input_blocks.11.0.in_layers.2.weight",
        "output_blocks.2.1.conv.weight",
        "output_blocks.8.2.conv.weight",
        "output_blocks.11.1.transformer_blocks.0.ff.net.2.weight",
    ):
        assert prefix + name in ldm_unet, name
    ours_unet = convert_ldm_unet_state_dict(ldm_unet, sd15_unet_config())
    oracle_unet = single_file_utils.convert_ldm_unet_checkpoint(dict(ldm_unet), dict(unet.config))
    assert sorted(ours_unet) == sorted(oracle_unet) == sorted(unet_sd)
    ours_vae = convert_ldm_vae_state_dict(ldm_vae)
    oracle_vae = single_file_utils.convert_ldm_vae_checkpoint(dict(ldm_vae), dict(vae.config))
    assert sorted(ours_vae) == sorted(oracle_vae) == sorted(vae_sd)
    for key, value in ours_vae.items():
        assert value.shape == vae_sd[key].shape, key

    # Our own networks take the converted weights as they are.
    from emo.models.unet_2d import UNet2D

    with torch.device("meta"):
        emo_unet = UNet2D(**sd15_unet_config())
        emo_vae = AutoencoderKL()
    assert {k: v.shape for k, v in emo_unet.state_dict().items()} == {
        k: v.shape for k, v in ours_unet.items()
    }
    assert {k: v.shape for k, v in emo_vae.state_dict().items()} == {
        k: v.shape for k, v in ours_vae.items()
    }


def test_sd15_unet_config_matches_the_preset() -> None:
    # One SD 1.5 config serves the importer, the preset and the constructor defaults.
    import inspect

    from emo.models.presets import get_preset
    from emo.models.unet_2d import UNet2D

    def as_lists(config: Any) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in config.items()}

    config = sd15_unet_config()
    assert config["block_out_channels"] == [320, 640, 1280, 1280]
    assert config == as_lists(get_preset("sd15").unet)
    defaults = inspect.signature(UNet2D.__init__).parameters
    assert config == as_lists({k: defaults[k].default for k in config})
    vae_defaults = inspect.signature(AutoencoderKL.__init__).parameters
    vae_config = as_lists(get_preset("sd15").vae)
    assert vae_config["scaling_factor"] == 0.18215
    assert vae_config == as_lists({k: vae_defaults[k].default for k in vae_config})


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_load_single_file(
    tmp_path: Path,
    suffix: str,
    unet_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
    vae_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> None:
    (_, unet_sd), (_, vae_sd) = unet_state, vae_state
    checkpoint = {
        **to_ldm_unet_state_dict(unet_sd),
        **to_ldm_vae_state_dict(vae_sd),
        "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.ones(3),
        "alphas_cumprod": torch.ones(10),
    }
    path = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(path))
    else:
        torch.save({"state_dict": checkpoint, "global_step": 1}, path)
    unet_config, unet_out, vae_config, vae_out = load_sd15_single_file(
        path, unet_config={"cross_attention_dim": 16}
    )
    _assert_same(unet_out, unet_sd)
    _assert_same(vae_out, vae_sd)
    assert unet_config["block_out_channels"] == [320, 640, 1280, 1280]  # SD 1.5 otherwise
    assert unet_config["cross_attention_dim"] == 16
    assert vae_config == {**SD15_VAE_CONFIG}

    # The VAE alone, into our AutoencoderKL (tiny config in the SD layout).
    vae = AutoencoderKL.from_single_file(path, config={**TINY_VAE})
    assert vae.load_report.ok
    for key, value in vae.state_dict().items():
        assert torch.equal(value, vae_sd[key]), key


def test_standalone_vae_file_and_ema(
    tmp_path: Path,
    unet_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
    vae_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> None:
    (_, unet_sd), (_, vae_sd) = unet_state, vae_state
    bare = to_ldm_vae_state_dict(vae_sd, prefix="")
    bare["loss.logvar"] = torch.zeros(())  # training leftovers in released VAE files
    path = tmp_path / "vae.safetensors"
    save_file(bare, str(path))
    config, state = load_ldm_vae_single_file(path, {"block_out_channels": [8, 8, 16, 16]})
    assert config["block_out_channels"] == [8, 8, 16, 16]
    _assert_same(state, vae_sd)

    ldm = to_ldm_unet_state_dict(unet_sd)
    ema = {"model_ema." + "".join(k.split(".")[1:]): v + 1 for k, v in ldm.items()}
    full = {**ldm, **ema, **to_ldm_vae_state_dict(vae_sd)}
    full_path = tmp_path / "full.safetensors"
    save_file(full, str(full_path))
    small = {"cross_attention_dim": 16}
    _, ema_unet, _, _ = load_sd15_single_file(full_path, extract_ema=True, unet_config=small)
    _assert_same(ema_unet, {k: v + 1 for k, v in unet_sd.items()})
    _, regular, _, _ = load_sd15_single_file(full_path, unet_config=small)
    _assert_same(regular, unet_sd)
    no_ema = tmp_path / "no_ema.safetensors"
    save_file({**ldm, **to_ldm_vae_state_dict(vae_sd)}, str(no_ema))
    with pytest.raises(CheckpointError, match="extract_ema"):
        load_sd15_single_file(no_ema, extract_ema=True, unet_config=small)


def test_bad_files_raise_checkpoint_error(
    tmp_path: Path,
    unet_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
    vae_state: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> None:
    (_, unet_sd), (_, vae_sd) = unet_state, vae_state
    with pytest.raises(CheckpointError, match="does not exist"):
        load_sd15_single_file(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_sd15_single_file(garbage)

    vae_only = tmp_path / "vae_only.safetensors"
    save_file(to_ldm_vae_state_dict(vae_sd), str(vae_only))
    with pytest.raises(CheckpointError, match="no Stable Diffusion UNet"):
        load_sd15_single_file(vae_only)
    unet_only = tmp_path / "unet_only.safetensors"
    save_file(to_ldm_unet_state_dict(unet_sd), str(unet_only))
    with pytest.raises(CheckpointError, match="no VAE"):
        load_sd15_single_file(unet_only)

    sdxl_like = to_ldm_unet_state_dict(unet_sd)
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    sdxl_like[key] = torch.zeros(8, 1024)
    sdxl_like.update(to_ldm_vae_state_dict(vae_sd))
    path = tmp_path / "sd2.safetensors"
    save_file(sdxl_like, str(path))
    with pytest.raises(CheckpointError, match=r"width 1024, not 768"):
        load_sd15_single_file(path)

    with pytest.raises(CheckpointError, match="label_emb"):
        convert_ldm_unet_state_dict(
            {"model.diffusion_model.label_emb.0.0.weight": torch.zeros(1)}, {"layers_per_block": 2}
        )
    with pytest.raises(CheckpointError, match="layers_per_block"):
        convert_ldm_unet_state_dict({"model.diffusion_model.out.2.bias": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="discriminator"):
        convert_ldm_vae_state_dict({"first_stage_model.discriminator.w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no place"):
        to_ldm_unet_state_dict({"down_blocks.0.resnets.0.foo.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no place"):
        to_ldm_vae_state_dict({"encoder.something.weight": torch.zeros(1)})
