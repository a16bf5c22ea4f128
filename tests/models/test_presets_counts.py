"""Model presets: parameter counts (meta device for SD 1.5) and consistency of the parts."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from emo.errors import ConfigError
from emo.models import Backbone, ReferenceNet, UNet2D
from emo.models.presets import PRESETS, get_preset, preset_names

SD15_UNET_PARAMETERS = 859_520_964
SD15_TEXT_ATTENTION_PARAMETERS = 859_520_964 - 12_164 - 815_521_280


pytestmark = pytest.mark.usefixtures("one_thread")


def test_presets_sd15_unet_parameter_count_on_meta() -> None:
    preset = get_preset("sd15")
    with torch.device("meta"):
        unet = UNet2D(**preset.unet)
        refnet = ReferenceNet(**preset.reference_net)
        backbone = Backbone(**preset.backbone)
    assert unet.num_parameters() == SD15_UNET_PARAMETERS
    head = 2 * 320 + 320 * 4 * 9 + 4  # conv_norm_out + conv_out
    text = {
        n: p.numel()
        for n, p in unet.named_parameters()
        if re.search(r"transformer_blocks\.\d+\.(attn2|norm2)\.", n)
    }
    # The text cross-attention EMO does not build: ~44 M parameters per network.
    assert sum(text.values()) == SD15_TEXT_ATTENTION_PARAMETERS
    assert refnet.num_parameters() == SD15_UNET_PARAMETERS - head - SD15_TEXT_ATTENTION_PARAMETERS
    assert backbone.num_parameters() > SD15_UNET_PARAMETERS - SD15_TEXT_ATTENTION_PARAMETERS
    assert all(p.is_meta for p in backbone.parameters())
    spatial = {k for k in backbone.state_dict() if ".motion_modules." not in k}
    assert set(unet.state_dict()) - set(text) <= set(backbone.state_dict())
    assert not set(text) & set(backbone.state_dict())
    assert len(backbone.motion_module_keys) == 4 * 2 + 4 * 3 + 1  # AnimateDiff v2 layout
    assert spatial  # the spatial part is there too


def test_presets_demo_geometry_keeps_the_mouth_in_several_latent_pixels() -> None:
    preset = get_preset("demo")
    assert (preset.resolution, preset.vae_scale_factor, preset.latent_size) == (64, 4, 16)
    assert preset.build_vae().downscale_factor == preset.vae_scale_factor
    assert preset.build_face_locator().downscale_factor == preset.vae_scale_factor


def test_presets_sd15_geometry() -> None:
    preset = get_preset("sd15")
    assert (preset.resolution, preset.latent_size, preset.vae_scale_factor) == (512, 64, 8)
    assert (preset.frames_per_clip, preset.motion_frames, preset.audio_token_dim) == (12, 4, 768)
    assert preset.backbone["audio_cross_attention_dim"] == preset.audio_token_dim
    assert preset.audio_projection["output_dim"] == preset.audio_token_dim
    assert preset.unet["block_out_channels"] == (320, 640, 1280, 1280)


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_presets_small_build_consistent_parts(name: str) -> None:
    preset = get_preset(name)
    torch.manual_seed(0)
    parts = {
        "reference_net": preset.build_reference_net(),
        "backbone": preset.build_backbone(),
        "vae": preset.build_vae(),
        "face_locator": preset.build_face_locator(),
        "audio_projection": preset.build_audio_projection(),
    }
    total = sum(sum(p.numel() for p in m.parameters()) for m in parts.values())
    assert total < 5_000_000
    s = preset.latent_size
    assert s * preset.vae_scale_factor == preset.resolution
    mask = torch.ones(1, 1, preset.resolution, preset.resolution)
    with torch.no_grad():
        face = parts["face_locator"](mask)
        assert face.shape[-2:] == (s, s)
        ref = parts["reference_net"](torch.randn(1, 4, s, s), 0)
        n = preset.motion_frames
        motion = parts["reference_net"].motion_features(torch.randn(1, 4, n, s, s))
        f = preset.frames_per_clip
        out = parts["backbone"](
            torch.randn(1, 4, f, s, s),
            500,
            reference_features=ref,
            motion_features=motion,
            audio_tokens=torch.randn(1, f, 4, preset.audio_token_dim),
            speed=torch.zeros(1, f),
        )
    assert out.shape == (1, 4, f, s, s)


def test_presets_lookup_and_frozen() -> None:
    assert preset_names() == ["demo", "sd15", "tiny"]
    assert set(PRESETS) == {"demo", "sd15", "tiny"}
    with pytest.raises(ConfigError, match="unknown model preset"):
        get_preset("sdxl")
    preset = get_preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.frames_per_clip = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        preset.unet["layers_per_block"] = 3  # type: ignore[index]
