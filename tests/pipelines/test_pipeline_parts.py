"""Building the full pipeline from pretrained parts on disk (SD1.5 folder, wav2vec2, AnimateDiff)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL as DiffusersVAE
from diffusers import MotionAdapter, UNet2DConditionModel
from safetensors.torch import save_file

from emo.errors import CheckpointError, EMOWarning
from emo.models.presets import get_preset
from emo.pipelines.emo_pipeline import EMOPipeline

TINY_UNET = {
    "sample_size": 4,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "attention_head_dim": 4,
    "cross_attention_dim": 32,
    "norm_num_groups": 8,
}
TINY_VAE = {
    "block_out_channels": [8, 16, 16, 16],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, wav2vec2_2conv_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**TINY_UNET)
    unet.save_pretrained(root / "sd" / "unet")
    DiffusersVAE(**TINY_VAE).save_pretrained(root / "sd" / "vae")
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_mid_block_layers_per_block=1,
        motion_num_attention_heads=4,
        motion_norm_num_groups=8,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    )
    with torch.no_grad():
        for param in adapter.parameters():
            param.normal_(0, 0.02)
    motion = root / "motion.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, motion)
    return {"sd": root / "sd", "wav2vec2": wav2vec2_2conv_dir, "motion": motion}


def test_from_pretrained_parts_initialises_from_sd_wav2vec2_and_animatediff(
    parts: dict[str, Path],
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = EMOPipeline.from_pretrained_parts(
            parts["sd"], parts["wav2vec2"], parts["motion"], preset="tiny", face_mask="full"
        )
    assert not [w for w in caught if "temporal modules" in str(w.message)]  # a complete v2 file
    unet = UNet2DConditionModel.from_pretrained(parts["sd"] / "unet")
    ours = pipe.backbone.state_dict()
    text_attention = [
        k for k in unet.state_dict() if re.search(r"transformer_blocks\.\d+\.(attn2|norm2)\.", k)
    ]
    assert text_attention and not [k for k in text_attention if k in ours]  # not built
    for key, value in unet.state_dict().items():
        if key not in text_attention:
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
    motion_keys = [k for k in ours if "motion_modules" in k and "proj_out" in k]
    assert motion_keys and any(ours[k].abs().sum() > 0 for k in motion_keys)
    assert pipe.reference_net.conv_out is None
    assert pipe.audio_encoder.num_layers == 3 and pipe.audio_projection.config["num_layers"] == 3
    assert pipe.scheduler.config["beta_schedule"] == "scaled_linear"
    pipe.set_progress_bar_config(disable=True)
    tone = (0.2 * np.sin(np.arange(4000) / 3.0)).astype(np.float32)
    out = pipe(
        np.full((48, 48, 3), 127, np.uint8),
        tone,
        audio_rate=16000,
        height=32,
        width=32,
        num_inference_steps=1,
        frames_per_clip=4,
        motion_frames=2,
        output_type="latent",
    )
    assert out.frames.shape == (1, 4, 7, 4, 4)


def test_a_motion_module_without_mid_block_is_reported(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    # AnimateDiff v1 has no mid-block module: the load must say so, not pass silently.
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_num_attention_heads=4,
        motion_norm_num_groups=8,
        motion_max_seq_length=24,
        use_motion_mid_block=False,
    )
    path = tmp_path / "v1.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, path)
    with pytest.warns(EMOWarning, match=r"1 temporal modules \(mid_block\.motion_modules\.0\)"):
        pipe = EMOPipeline.from_pretrained_parts(
            parts["sd"], parts["wav2vec2"], path, preset="tiny", face_mask="full"
        )
    mid = pipe.backbone.mid_block.motion_modules
    assert mid is not None
    assert torch.count_nonzero(mid[0].temporal_transformer.proj_out.weight) == 0  # fresh


def test_missing_parts_are_checkpoint_errors(parts: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        EMOPipeline.from_pretrained_parts(tmp_path / "nope", parts["wav2vec2"], preset="tiny")
    with pytest.raises(CheckpointError):
        EMOPipeline.from_pretrained_parts(tmp_path, parts["wav2vec2"], preset="tiny")


def test_full_sd15_on_the_meta_device_allocates_nothing(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    preset = get_preset("sd15")
    sd = tmp_path / "sd15"
    (sd / "unet").mkdir(parents=True)
    (sd / "vae").mkdir()
    unet_config = {k: list(v) if isinstance(v, tuple) else v for k, v in preset.unet.items()}
    (sd / "unet" / "config.json").write_text(json.dumps(unet_config))
    (sd / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"never read")
    vae_config = {k: list(v) if isinstance(v, tuple) else v for k, v in preset.vae.items()}
    (sd / "vae" / "config.json").write_text(json.dumps(vae_config))
    pipe = EMOPipeline.from_pretrained_parts(sd, parts["wav2vec2"], device="meta", face_mask="full")
    for name in ("vae", "reference_net", "backbone", "face_locator", "audio_projection"):
        module = getattr(pipe, name)
        assert all(p.is_meta for p in module.parameters()), name
    spatial = sum(
        p.numel()
        for n, p in pipe.backbone.named_parameters()
        if "motion_modules" not in n and "audio" not in n and "speed" not in n
    )
    # The SD 1.5 UNet (859,520,964) minus its text cross-attention (43,987,520), not built.
    assert spatial == 859_520_964 - 43_987_520
    assert pipe.vae.num_parameters() == 83_653_863


def test_from_a_single_file_checkpoint(parts: dict[str, Path], tmp_path: Path) -> None:
    from emo.loaders.single_file import to_ldm_unet_state_dict, to_ldm_vae_state_dict

    unet = UNet2DConditionModel.from_pretrained(parts["sd"] / "unet")
    vae = DiffusersVAE.from_pretrained(parts["sd"] / "vae")
    single = {
        **to_ldm_unet_state_dict(unet.state_dict(), TINY_UNET),
        **to_ldm_vae_state_dict(vae.state_dict()),
    }
    file = tmp_path / "tiny-sd.safetensors"
    save_file({k: v.contiguous() for k, v in single.items()}, file)
    pipe = EMOPipeline.from_pretrained_parts(
        file,
        parts["wav2vec2"],
        preset="tiny",
        face_mask="full",
        unet_config=TINY_UNET,
        vae_config=TINY_VAE,
    )
    ours = pipe.backbone.state_dict()
    for key, value in unet.state_dict().items():
        if not re.search(r"transformer_blocks\.\d+\.(attn2|norm2)\.", key):
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
    vae_ours = pipe.vae.state_dict()
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(vae_ours[key], value, rtol=0, atol=0)


def test_wav2vec2_pipeline_round_trips_without_the_original_folder(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    w2v = tmp_path / "w2v-copy"
    shutil.copytree(parts["wav2vec2"], w2v)
    pipe = EMOPipeline.from_pretrained_parts(parts["sd"], w2v, preset="tiny", face_mask="full")
    folder = pipe.save_pretrained(tmp_path / "saved")
    shutil.rmtree(w2v)
    loaded = EMOPipeline.from_pretrained(folder)
    assert type(loaded.audio_encoder).__name__ == "Wav2Vec2Encoder"
    wave = torch.sin(torch.arange(8000) / 7.0)
    expected = pipe.audio_encoder.encode(wave, 16000, num_frames=13, fps=25)
    torch.testing.assert_close(
        loaded.audio_encoder.encode(wave, 16000, num_frames=13, fps=25), expected
    )
