"""A HalloPipeline with random weights of Hallo's full size (or tiny), for timing only.

Random weights cost exactly what Hallo's released weights cost: the same networks
(:func:`emo.loaders.hallo.hallo_configs` at Stable Diffusion 1.5 size: the 2,656 keys of
Hallo's ``net.pth``), the SD VAE and a wav2vec2-base encoder in Hallo's mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

#: A tiny UNet config (the shape of Hallo's golden test set) for CPU smoke runs.
TINY_UNET = {
    "block_out_channels": [32, 32, 64, 64],
    "layers_per_block": 1,
    "attention_head_dim": 8,
    "cross_attention_dim": 32,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "in_channels": 4,
    "out_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 16,
}


def random_hallo(folder: Path, *, tiny: bool, device: str, dtype: torch.dtype) -> Any:
    """Build the pipeline; ``folder`` receives the random wav2vec2 model."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from emo.audio.wav2vec2 import Wav2Vec2Encoder
    from emo.loaders.hallo import hallo_configs, hallo_network_classes
    from emo.models.sd15 import SD15_UNET_CONFIG
    from emo.models.vae import AutoencoderKL
    from emo.pipelines.hallo_pipeline import HalloPipeline

    torch.manual_seed(0)
    audio_config = (
        Wav2Vec2Config(
            hidden_size=32,
            num_hidden_layers=12,
            num_attention_heads=4,
            intermediate_size=64,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
        )
        if tiny
        else Wav2Vec2Config()
    )
    Wav2Vec2Model(audio_config).save_pretrained(folder / "wav2vec2")
    encoder = Wav2Vec2Encoder(
        str(folder / "wav2vec2"), mode="hallo", chunk_seconds=60.0, context_seconds=10.0
    )
    configs = hallo_configs(
        TINY_UNET if tiny else dict(SD15_UNET_CONFIG),
        audio_feature_dim=audio_config.hidden_size,
        audio_layers=audio_config.num_hidden_layers,
        audio_hidden_dim=64 if tiny else 512,
    )
    classes = hallo_network_classes()
    with torch.device(device):
        nets = {name: classes[name](**config).to(dtype).eval() for name, config in configs.items()}
        vae = (
            AutoencoderKL(
                block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8
            )
            if tiny
            else AutoencoderKL()
        )
    encoder.to(device=device)
    pipe = HalloPipeline(vae=vae.to(dtype).eval(), audio_encoder=encoder, **nets)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def box_masks(size: int, latent: int) -> Any:
    """Hallo's masks for a face box in the middle of a ``size`` portrait (no face model needed)."""
    from emo.face_masks.hallo import hallo_masks_from_boxes

    face = (size // 4, size // 6, 3 * size // 4, 5 * size // 6)
    lip = (3 * size // 8, 5 * size // 8, 5 * size // 8, 3 * size // 4)
    return hallo_masks_from_boxes(face, lip, (size, size), latent, output_size=(size, size))
