"""Loading a diffusers-format SD 1.x UNet folder into UNet2D, ReferenceNet and Backbone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch
from model_configs import TINY_UNET

from emo.errors import CheckpointError, ConfigError
from emo.loaders.diffusers_unet import (
    find_unet_files,
    is_new_branch_key,
    load_pretrained_unet,
    load_sd15_unet_state_dict,
)
from emo.models import Backbone, ReferenceNet, UNet2D

CONFIG: dict[str, Any] = {"sample_size": 8, **TINY_UNET}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    torch.manual_seed(0)
    ref = diffusers.UNet2DConditionModel(**CONFIG).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    root = tmp_path_factory.mktemp("sd15")
    ref.save_pretrained(root / "unet")
    (root / "model_index.json").write_text("{}")
    return root, ref


def test_unet_load_diffusers_folder(sd_folder: tuple[Path, Any]) -> None:
    root, ref = sd_folder
    config, state = load_sd15_unet_state_dict(root)
    assert config["block_out_channels"] == [32, 64]
    assert "act_fn" not in config and "_class_name" not in config
    assert set(state) == set(ref.state_dict())
    for path in (root, root / "unet", root / "unet" / "diffusion_pytorch_model.safetensors"):
        unet, report = load_pretrained_unet(path)
        assert isinstance(unet, UNet2D) and report.ok
    x, text = torch.randn(1, 4, 8, 8), torch.randn(1, 3, 24)
    with torch.no_grad():
        assert (unet.eval()(x, 9, text) - ref(x, 9, text).sample).abs().max() <= 1e-5


def test_unet_load_into_reference_net_and_backbone(sd_folder: tuple[Path, Any]) -> None:
    root, _ = sd_folder
    refnet, report = load_pretrained_unet(root, ReferenceNet)
    assert isinstance(refnet, ReferenceNet)
    assert not report.missing_keys
    assert sorted(report.unexpected_keys) == [
        "conv_norm_out.bias",
        "conv_norm_out.weight",
        "conv_out.bias",
        "conv_out.weight",
    ]
    backbone, report = load_pretrained_unet(
        root,
        Backbone,
        dtype=torch.bfloat16,
        audio_cross_attention_dim=16,
        motion_num_attention_heads=4,
        speed_embed_dim=8,
    )
    assert isinstance(backbone, Backbone) and backbone.dtype == torch.bfloat16
    assert not report.unexpected_keys
    assert report.missing_keys and all(is_new_branch_key(k) for k in report.missing_keys)
    assert any(".audio_attn." in k for k in report.missing_keys)
    assert any(".motion_modules." in k for k in report.missing_keys)
    assert any(k.startswith("speed_encoder.") for k in report.missing_keys)
    assert isinstance(Backbone.from_unet2d(root, speed_embed_dim=8), Backbone)


def test_unet_load_bin_weights(sd_folder: tuple[Path, Any], tmp_path: Path) -> None:
    _, ref = sd_folder
    ref.save_pretrained(tmp_path / "unet", safe_serialization=False)
    assert find_unet_files(tmp_path)[1].name == "diffusion_pytorch_model.bin"
    unet, report = load_pretrained_unet(tmp_path)
    assert report.ok
    assert torch.equal(unet.conv_in.weight, ref.conv_in.weight)


def test_unet_load_errors(sd_folder: tuple[Path, Any], tmp_path: Path) -> None:
    root, _ = sd_folder
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained_unet(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_pretrained_unet(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"block_out_channels": [32, 64]}))
    with pytest.raises(CheckpointError, match="no UNet weights"):
        load_pretrained_unet(tmp_path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_pretrained_unet(root, cross_attention_dim=32)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_pretrained_unet(root, transformer_layers_per_block=2)
    _, report = load_pretrained_unet(root, transformer_layers_per_block=2, strict=False)
    assert report.missing_keys and not report.unexpected_keys
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((root / "unet" / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "class_embed_type": "timestep"}))
    (bad / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="class_embed_type"):
        load_pretrained_unet(bad)
    with pytest.raises(ConfigError, match="does not take"):
        load_pretrained_unet(root, UNet2D, audio_cross_attention_dim=16)
