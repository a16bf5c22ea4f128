"""AutoencoderKL: parity with diffusers (test-only oracle), slicing, loading, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch
from safetensors.torch import load_file, save_file

from emo.errors import CheckpointError, ConfigError, EMOWarning, InputError
from emo.loaders.diffusers_vae import convert_diffusers_vae_state_dict
from emo.models.vae import AutoencoderKL, DiagonalGaussian

TINY = {
    "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
    "sample_size": 32,
}


@pytest.fixture(scope="module")
def diffusers_vae(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A tiny diffusers AutoencoderKL with perturbed weights, saved in diffusers format."""
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(**TINY).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path_factory.mktemp("diffusers_vae")
    vae.save_pretrained(folder)
    return vae, folder


@pytest.fixture(scope="module")
def ours(diffusers_vae: tuple[torch.nn.Module, Path]) -> AutoencoderKL:
    return AutoencoderKL.from_diffusers(diffusers_vae[1])


def test_sd15_vae_parameter_count_on_meta() -> None:
    with torch.device("meta"):
        vae = AutoencoderKL()
    assert vae.num_parameters() == 83_653_863
    assert all(p.is_meta for p in vae.parameters())


def test_state_dict_names_and_shapes_equal_diffusers(
    diffusers_vae: tuple[torch.nn.Module, Path], ours: AutoencoderKL
) -> None:
    theirs = {k: tuple(v.shape) for k, v in diffusers_vae[0].state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert mine == theirs
    assert ours.load_report.ok


def test_encode_decode_parity(
    diffusers_vae: tuple[torch.nn.Module, Path], ours: AutoencoderKL
) -> None:
    ref = diffusers_vae[0]
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = ref.encode(x).latent_dist
        mine = ours.encode(x)
        torch.testing.assert_close(mine.mean, theirs.mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(mine.logvar, theirs.logvar, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.decode(z), ref.decode(z).sample, atol=1e-5, rtol=0)
        # Same generator, same posterior sample.
        a = mine.sample(torch.Generator().manual_seed(3))
        b = theirs.sample(torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        torch.testing.assert_close(mine.kl(), theirs.kl(), atol=1e-3, rtol=1e-5)


def test_video_is_processed_per_frame_in_slices(ours: AutoencoderKL) -> None:
    z = torch.randn(2, 4, 5, 8, 8, generator=torch.Generator().manual_seed(4))
    x = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    calls: list[int] = []
    hook = ours.decoder.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            ours.enable_slicing(3)
            sliced = ours.decode(z)
            ours.disable_slicing()
            whole = ours.decode(z)
            per_frame = torch.stack([ours.decode(z[:, :, i]) for i in range(5)], dim=2)
            ours.enable_slicing(2)
            enc_sliced = ours.encode(x).mean
            enc_frames = torch.stack([ours.encode(x[:, :, i]).mean for i in range(3)], dim=2)
    finally:
        hook.remove()
        ours.enable_slicing(8)
    assert sliced.shape == (2, 3, 5, 16, 16)
    assert calls[:4] == [3, 3, 3, 1]  # 10 frames in slices of 3
    assert max(calls) <= 10
    torch.testing.assert_close(sliced, per_frame, atol=1e-5, rtol=0)
    torch.testing.assert_close(whole, per_frame, atol=1e-5, rtol=0)
    torch.testing.assert_close(enc_sliced, enc_frames, atol=1e-5, rtol=0)


def test_scaled_latents_round_trip(ours: AutoencoderKL) -> None:
    x = torch.rand(1, 3, 2, 32, 32, generator=torch.Generator().manual_seed(6)) * 2 - 1
    with torch.no_grad():
        a = ours.encode_to_latents(x, torch.Generator().manual_seed(7))
        b = ours.encode_to_latents(x, torch.Generator().manual_seed(7))
        mean = ours.encode_to_latents(x, sample=False)
        assert a.shape == (1, 4, 2, 16, 16)
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(mean, ours.encode(x).mean * ours.scaling_factor)
        torch.testing.assert_close(ours.decode_latents(mean), ours.decode(ours.encode(x).mean))
        torch.testing.assert_close(ours(x), ours.decode(ours.encode(x).mode()))


def test_diagonal_gaussian_clamps_and_kl_shape() -> None:
    params = torch.zeros(2, 8, 3, 4, 4)
    params[:, 4:] = 100.0
    dist = DiagonalGaussian(params)
    assert float(dist.logvar.max()) == 20.0
    assert dist.kl().shape == (2,)
    assert dist.nll(dist.mean).shape == (2,)
    standard = DiagonalGaussian(torch.zeros(1, 8, 2, 2))
    assert float(standard.kl().abs().max()) == 0.0
    assert float(standard.kl(standard).abs().max()) == 0.0


def test_legacy_attention_names_are_mapped(
    diffusers_vae: tuple[torch.nn.Module, Path], ours: AutoencoderKL, tmp_path: Path
) -> None:
    folder = diffusers_vae[1]
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    legacy = {}
    names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    for key, value in state.items():
        for new, old in names.items():
            marker = f".attentions.0.{new}."
            if marker in key:
                key = key.replace(marker, f".attentions.0.{old}.")
                if value.ndim == 2:  # some old files store 1x1 convolutions
                    value = value[:, :, None, None]
        legacy[key] = value.contiguous()
    assert any(".query." in k for k in legacy)
    save_file(legacy, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    loaded = AutoencoderKL.from_diffusers(tmp_path)
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, atol=0, rtol=0)
    assert convert_diffusers_vae_state_dict({"a.b": torch.zeros(1)}).keys() == {"a.b"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_pipeline_folder_with_vae_subfolder_and_dtype(
    diffusers_vae: tuple[torch.nn.Module, Path], tmp_path: Path, dtype: torch.dtype
) -> None:
    pipe = tmp_path / "sd"
    (pipe / "vae").mkdir(parents=True)
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        (pipe / "vae" / name).write_bytes((diffusers_vae[1] / name).read_bytes())
    vae = AutoencoderKL.from_diffusers(pipe, dtype=dtype)
    assert vae.dtype == dtype and not vae.training
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        low = vae.decode(z)  # float32 input is cast to the model dtype
        ref = diffusers_vae[0].decode(z).sample
    assert low.dtype == dtype
    assert float((low.float() - ref).abs().max()) < 0.2
    latents = vae.encode_to_latents(low.float(), torch.Generator().manual_seed(0))
    assert latents.dtype == dtype and bool(torch.isfinite(latents).all())


def test_missing_unexpected_and_mismatched_keys(
    diffusers_vae: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    folder = diffusers_vae[1]
    config = json.loads((folder / "config.json").read_text())
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))

    def write(sd: dict[str, torch.Tensor], cfg: dict[str, object]) -> Path:
        out = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        save_file(sd, str(out / "diffusion_pytorch_model.safetensors"))
        (out / "config.json").write_text(json.dumps(cfg))
        return out

    partial = dict(state)
    partial.pop("decoder.conv_out.bias")
    partial["extra.weight"] = torch.zeros(1)
    broken = write(partial, config)
    with pytest.raises(CheckpointError, match=r"decoder\.conv_out\.bias"):
        AutoencoderKL.from_diffusers(broken)
    with pytest.warns(EMOWarning, match="extra.weight"):
        vae = AutoencoderKL.from_diffusers(broken, strict=False)
    assert vae.load_report.missing_keys == ("decoder.conv_out.bias",)
    assert vae.load_report.unexpected_keys == ("extra.weight",)

    wrong = dict(state)
    wrong["quant_conv.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(CheckpointError, match="wrong shape"):
        AutoencoderKL.from_diffusers(write(wrong, config), strict=False)

    with pytest.raises(CheckpointError, match=r"no config\.json"):
        AutoencoderKL.from_diffusers(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="no weights"):
        AutoencoderKL.from_diffusers(empty)
    with pytest.raises(ConfigError, match="UNet2DConditionModel"):
        AutoencoderKL.from_diffusers(
            write(state, {**config, "_class_name": "UNet2DConditionModel"})
        )


def test_diffusers_config_keys() -> None:
    base = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.6.0", **TINY}
    base["block_out_channels"] = [32, 64]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kwargs = AutoencoderKL.config_from_diffusers(
            {**base, "force_upcast": True, "latents_mean": None, "scaling_factor": None}
        )
    assert kwargs["block_out_channels"] == (32, 64)
    assert "force_upcast" not in kwargs and "scaling_factor" not in kwargs
    with pytest.warns(EMOWarning, match="shift_factor"):
        AutoencoderKL.config_from_diffusers({**base, "shift_factor": 0.1})
    vae = AutoencoderKL(**kwargs)
    assert "force_upcast" not in vae.config


def test_bad_inputs_raise_input_error(ours: AutoencoderKL) -> None:
    with pytest.raises(InputError, match="channels"):
        ours.encode(torch.zeros(1, 4, 32, 32))
    with pytest.raises(InputError, match="multiples of 2"):
        ours.encode(torch.zeros(1, 3, 31, 32))
    with pytest.raises(InputError, match=r"\(b, c, h, w\)"):
        ours.decode(torch.zeros(4, 8, 8))
    with pytest.raises(InputError, match="floating-point"):
        ours.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"torch\.Tensor"):
        ours.decode_latents([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InputError):
        ours.enable_slicing(0)


def test_bad_configs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="act_fn"):
        AutoencoderKL(**{**TINY, "act_fn": "gelu"})
    with pytest.raises(ConfigError, match="block types"):
        AutoencoderKL(**{**TINY, "down_block_types": ("AttnDownEncoderBlock2D",) * 2})
    with pytest.raises(ConfigError, match="one entry per level"):
        AutoencoderKL(**{**TINY, "up_block_types": ("UpDecoderBlock2D",)})
    with pytest.raises(ConfigError, match="norm_num_groups"):
        AutoencoderKL(**{**TINY, "norm_num_groups": 24})


def test_gradient_checkpointing_gives_same_gradients() -> None:
    torch.manual_seed(9)
    vae = AutoencoderKL(**TINY)
    x = torch.rand(1, 3, 16, 16) * 2 - 1

    def grads() -> list[torch.Tensor]:
        vae.zero_grad()
        vae(x).square().mean().backward()
        return [p.grad.clone() for p in vae.parameters() if p.grad is not None]

    plain = grads()
    vae.enable_gradient_checkpointing()
    assert vae.gradient_checkpointing
    checkpointed = grads()
    vae.disable_gradient_checkpointing()
    assert len(plain) == len(checkpointed) == len(list(vae.parameters()))
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_save_pretrained_round_trip_without_quant_convs(tmp_path: Path) -> None:
    torch.manual_seed(10)
    vae = AutoencoderKL(
        **TINY, use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False
    )
    assert not any("quant_conv" in k or "attentions" in k for k in vae.state_dict())
    vae.save_pretrained(tmp_path)
    loaded = AutoencoderKL.from_pretrained(tmp_path)
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), vae.decode(z), atol=0, rtol=0)
