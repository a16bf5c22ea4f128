"""ModelMixin persistence: config.json + model.safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emo.errors import CheckpointError, ConfigError, EMOWarning
from emo.modeling import ModelMixin, load_state_dict_file


class TinyNet(ModelMixin):
    def __init__(self, width: int = 8, depth: int = 2, use_bias: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width, bias=use_bias) for _ in range(depth))
        self.register_buffer("scale", torch.full((width,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x * self.scale


class TinyNetVariant(TinyNet):
    pass


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyNet(width=6, depth=3)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["width"] == 6 and config["depth"] == 3
    loaded = TinyNet.from_pretrained(tmp_path)
    assert not loaded.training
    x = torch.randn(4, 6)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert loaded.config == model.config


def test_load_with_dtype_and_meta_device(tmp_path: Path) -> None:
    TinyNet().save_pretrained(tmp_path)
    half = TinyNet.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    meta = TinyNet.from_pretrained(tmp_path, device="meta")
    assert meta.device.type == "meta"
    assert meta.num_parameters() == TinyNet().num_parameters()


def test_subclass_is_restored_from_the_stamped_class(tmp_path: Path) -> None:
    TinyNetVariant(width=4).save_pretrained(tmp_path)
    assert type(TinyNet.from_pretrained(tmp_path)) is TinyNetVariant


class Other(ModelMixin):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)


def test_loading_a_different_model_class_is_an_error(tmp_path: Path) -> None:
    Other().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not a"):
        TinyNet.from_pretrained(tmp_path)


def test_strict_load_reports_missing_and_unexpected_keys_by_name(tmp_path: Path) -> None:
    TinyNet(depth=2).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights.pop("layers.1.bias")
    weights["stray.weight"] = torch.zeros(1)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        TinyNet.from_pretrained(tmp_path)
    assert "layers.1.bias" in str(info.value) and "stray.weight" in str(info.value)
    with pytest.warns(EMOWarning, match="layers.1.bias"):
        model = TinyNet.from_pretrained(tmp_path, strict=False)
    torch.testing.assert_close(model.layers[0].weight, weights["layers.0.weight"])


def test_shape_mismatch_is_a_checkpoint_error(tmp_path: Path) -> None:
    TinyNet(width=8).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        TinyNet.from_pretrained(tmp_path, width=4)


def test_load_state_dict_file_reads_bin_and_rejects_garbage(tmp_path: Path) -> None:
    state = TinyNet().state_dict()
    torch.save({"state_dict": state}, tmp_path / "w.ckpt")
    assert set(load_state_dict_file(tmp_path / "w.ckpt")) == set(state)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
        load_state_dict_file(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict_file(tmp_path / "missing.safetensors")


def test_save_is_atomic_no_temp_files_left(tmp_path: Path) -> None:
    model = TinyNet()
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
