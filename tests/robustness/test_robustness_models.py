"""Bad input to the networks gets an emo error, not a traceback from inside torch.

Each case once escaped as a RuntimeError (dtype/device mismatch, empty conv input,
negative tensor size), a ZeroDivisionError, a TypeError or an AttributeError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.models import Backbone, ReferenceNet, UNet2D
from emo.models.audio_projection import AudioProjection
from emo.models.face_locator import FaceLocator
from emo.models.vae import AutoencoderKL

CONFIG: dict[str, Any] = {
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "attention_head_dim": 2,
    "norm_num_groups": 8,
    "cross_attention_dim": 8,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
}
VAE: dict[str, Any] = {
    "block_out_channels": (8, 16),
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "layers_per_block": 1,
    "norm_num_groups": 8,
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def unet() -> UNet2D:
    return UNet2D(**CONFIG).eval()


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return Backbone(**CONFIG, audio_cross_attention_dim=8, speed_embed_dim=8).eval()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_unet_rejects_a_sample_of_another_dtype(unet: UNet2D, dtype: torch.dtype) -> None:
    # "mat1 and mat2 must have the same dtype" from deep inside a Linear, before.
    with torch.no_grad(), pytest.raises(InputError, match=r"sample is torch\..* but the weights"):
        unet(torch.zeros(1, 4, 8, 8, dtype=dtype), 10)


def test_unet_under_autocast_still_accepts_another_dtype(unet: UNet2D) -> None:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert unet(torch.zeros(1, 4, 8, 8, dtype=torch.bfloat16), 10).shape == (1, 4, 8, 8)


def test_unet_rejects_a_sample_on_another_device(unet: UNet2D) -> None:
    with pytest.raises(InputError, match="is on meta but the model is on cpu"):
        unet(torch.zeros(1, 4, 8, 8, device="meta"), 10)


def test_reference_net_rejects_an_empty_size() -> None:
    with pytest.raises(InputError, match="empty size"):
        ReferenceNet(**CONFIG)(torch.zeros(1, 4, 0, 8), 0)


@pytest.mark.parametrize("timestep", ["a", None, object()])
def test_unet_rejects_bad_timesteps(unet: UNet2D, timestep: Any) -> None:
    with pytest.raises(InputError, match="timestep must be"):
        unet(torch.zeros(1, 4, 8, 8), timestep)


def test_unet_rejects_numpy_text_states(unet: UNet2D) -> None:
    with pytest.raises(InputError, match="encoder_hidden_states must be a torch.Tensor"):
        unet(torch.zeros(1, 4, 8, 8), 1, np.zeros((1, 5, 8)))  # type: ignore[arg-type]


def test_backbone_rejects_empty_clips_and_wrong_argument_types(backbone: Backbone) -> None:
    sample = torch.zeros(1, 4, 2, 8, 8)
    with pytest.raises(InputError, match="holds no frames"):
        backbone(torch.zeros(1, 4, 0, 8, 8), 10)
    with pytest.raises(InputError, match="reference_features must be the ReferenceFeatures"):
        backbone(sample, 10, reference_features=torch.zeros(1, 4, 8, 8))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="motion_features must be MotionFeatures"):
        backbone(sample, 10, motion_features={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="audio_tokens must be a torch.Tensor"):
        backbone(sample, 10, audio_tokens=np.zeros((1, 2, 4, 8)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="speed must be a torch.Tensor"):
        backbone(sample, 10, speed=np.zeros((1, 2)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="audio_tokens is on meta"):
        backbone(sample, 10, audio_tokens=torch.zeros(1, 2, 4, 8, device="meta"))


@pytest.mark.parametrize(
    "override",
    [
        {"norm_num_groups": 0},
        {"block_out_channels": (16, "a")},
        {"layers_per_block": 0},
        {"in_channels": 0},
        {"cross_attention_dim": 0},
        {"audio_cross_attention_dim": -3},
    ],
)
def test_unet_configs_with_non_positive_ints(override: dict[str, Any]) -> None:
    cls = Backbone if "audio_cross_attention_dim" in override else UNet2D
    with pytest.raises(ConfigError, match="must be a positive int"):
        cls(**{**CONFIG, **override})


@pytest.mark.parametrize(
    "override",
    [{"norm_num_groups": 0}, {"block_out_channels": "abc"}, {"layers_per_block": -1}],
)
def test_vae_configs_with_non_positive_ints(override: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="must be a positive int"):
        AutoencoderKL(**{**VAE, **override})


def test_vae_slicing_needs_an_int() -> None:
    with pytest.raises(InputError, match="frame_slice_size"):
        AutoencoderKL(**VAE).enable_slicing("a")  # type: ignore[arg-type]


def test_face_locator_bad_config_and_meta_mask() -> None:
    with pytest.raises(ConfigError, match="in_channels must be a positive int"):
        FaceLocator(in_channels="1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="meta"):
        FaceLocator(block_out_channels=(4, 8))(torch.zeros(1, 1, 8, 8, device="meta"))


def test_audio_projection_bad_config_and_device() -> None:
    with pytest.raises(ConfigError, match="feature_dim must be a positive int"):
        AudioProjection(feature_dim="a", num_layers=1)  # type: ignore[arg-type]
    proj = AudioProjection(feature_dim=4, num_layers=2, hidden_dim=8, output_dim=8)
    with pytest.raises(InputError, match="features is on meta"):
        proj(torch.zeros(1, 3, 2, 4, device="meta"))
