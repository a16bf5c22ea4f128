"""Named model presets: the configs of every network of an EMO pipeline, in one place.

A :class:`ModelPreset` holds keyword arguments for :class:`~emo.models.UNet2D`,
:class:`~emo.models.ReferenceNet`, :class:`~emo.models.Backbone`, the VAE
(:class:`~emo.models.vae.AutoencoderKL`), the FaceLocator and the AudioProjection,
plus the clip geometry. Three presets ship:

``sd15``
    The paper's setting on Stable Diffusion 1.5: channels (320, 640, 1280, 1280),
    2 layers per block, 8 heads, cross-attention 768, 512x512 pixels (64x64
    latents), clips of f=12 frames with n=4 motion frames, audio tokens of
    width 768 (4 per frame from a +-2-frame window of 13 wav2vec2-base layers).
``demo``
    The shape of the bundled demonstration model (``emo-demo``, trained by
    ``examples/train_demo.py`` on synthetic heads): the ``tiny`` UNets with 2 attention
    heads (of width 16 and 32: on CPUs, heads of width 8 make attention several times
    slower for no gain at this size), f=8, n=2, mel audio, but 64x64 pixels and a 3-level VAE that downsamples 4x (16x16
    latents, so a mouth spans a few latent pixels); ``scaling_factor`` 1.0 until
    the VAE is trained (:func:`emo.training.vae.train_vae` fits it).
``tiny``
    A few million parameters in all, for tests and the CPU demo: channels
    (32, 64), 1 layer per block, GroupNorm groups 8, 128x128 pixels (16x16
    latents, the VAE still downsamples 8x), f=8, n=2, audio tokens of width 32
    from an 80-bin mel spectrogram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from emo._deprecation import warn_renamed
from emo.errors import ConfigError
from emo.models.sd15 import SD15_UNET_CONFIG, SD15_VAE_CONFIG

if TYPE_CHECKING:
    from emo.models.audio_projection import AudioProjection
    from emo.models.backbone import Backbone
    from emo.models.face_locator import FaceLocator
    from emo.models.reference_net import ReferenceNet
    from emo.models.unet_2d import UNet2D
    from emo.models.vae import AutoencoderKL

__all__ = ["PRESETS", "ModelPreset", "get_preset", "preset_names"]


def _frozen(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


@dataclass(frozen=True)
class ModelPreset:
    """Configs (``__init__`` keyword arguments) of every network, and the clip geometry.

    Attributes
    ----------
    name
        Preset name.
    unet
        Keyword arguments of :class:`~emo.models.UNet2D`.
    reference_net
        Keyword arguments of :class:`~emo.models.ReferenceNet`.
    backbone
        Keyword arguments of :class:`~emo.models.Backbone`.
    vae
        Keyword arguments of :class:`emo.models.vae.AutoencoderKL`.
    face_locator
        Keyword arguments of :class:`emo.models.face_locator.FaceLocator`.
    audio_projection
        Keyword arguments of :class:`emo.models.audio_projection.AudioProjection`.
    resolution
        Image height and width in pixels.
    frames_per_clip
        Frames ``f`` per clip (``PipelineSettings.frames_per_clip``).
    motion_frames
        Motion frames ``n`` carried from one clip to the next
        (``PipelineSettings.motion_frames``).
    audio_token_dim
        Width of the audio tokens (AudioProjection output, Backbone audio attention).
    """

    name: str
    unet: Mapping[str, Any]
    reference_net: Mapping[str, Any]
    backbone: Mapping[str, Any]
    vae: Mapping[str, Any]
    face_locator: Mapping[str, Any]
    audio_projection: Mapping[str, Any]
    resolution: int = 512
    frames_per_clip: int = 12
    motion_frames: int = 4
    audio_token_dim: int = 768
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def num_frames(self) -> int:
        """Deprecated name of :attr:`frames_per_clip`."""
        warn_renamed("num_frames", "frames_per_clip", where="ModelPreset")
        return self.frames_per_clip

    @property
    def num_motion_frames(self) -> int:
        """Deprecated name of :attr:`motion_frames`."""
        warn_renamed("num_motion_frames", "motion_frames", where="ModelPreset")
        return self.motion_frames

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel (``2 ** (levels - 1)`` of the VAE)."""
        return int(2 ** (len(self.vae.get("block_out_channels", (128, 256, 512, 512))) - 1))

    @property
    def latent_size(self) -> int:
        """Latent height and width: ``resolution // vae_scale_factor``."""
        return self.resolution // self.vae_scale_factor

    def build_unet(self, **overrides: Any) -> UNet2D:
        """Build a freshly initialised :class:`~emo.models.UNet2D` (``overrides`` replace config)."""
        from emo.models.unet_2d import UNet2D

        return UNet2D(**{**self.unet, **overrides})

    def build_reference_net(self, **overrides: Any) -> ReferenceNet:
        """Build a freshly initialised :class:`~emo.models.ReferenceNet`."""
        from emo.models.reference_net import ReferenceNet

        return ReferenceNet(**{**self.reference_net, **overrides})

    def build_backbone(self, **overrides: Any) -> Backbone:
        """Build a freshly initialised :class:`~emo.models.Backbone`."""
        from emo.models.backbone import Backbone

        return Backbone(**{**self.backbone, **overrides})

    def build_vae(self, **overrides: Any) -> AutoencoderKL:
        """Build a freshly initialised VAE (:class:`emo.models.vae.AutoencoderKL`)."""
        from emo.models.vae import AutoencoderKL

        return AutoencoderKL(**{**self.vae, **overrides})

    def build_face_locator(self, **overrides: Any) -> FaceLocator:
        """Build a freshly initialised :class:`emo.models.face_locator.FaceLocator`."""
        from emo.models.face_locator import FaceLocator

        return FaceLocator(**{**self.face_locator, **overrides})

    def build_audio_projection(self, **overrides: Any) -> AudioProjection:
        """Build a freshly initialised :class:`emo.models.audio_projection.AudioProjection`."""
        from emo.models.audio_projection import AudioProjection

        return AudioProjection(**{**self.audio_projection, **overrides})


def _make(
    name: str,
    unet: dict[str, Any],
    backbone_extra: dict[str, Any],
    vae: dict[str, Any],
    face_locator: dict[str, Any],
    audio_projection: dict[str, Any],
    **geometry: Any,
) -> ModelPreset:
    return ModelPreset(
        name=name,
        unet=_frozen(unet),
        reference_net=_frozen(unet),
        backbone=_frozen({**unet, **backbone_extra}),
        vae=_frozen(vae),
        face_locator=_frozen(face_locator),
        audio_projection=_frozen(audio_projection),
        **geometry,
    )


_TINY_UNET: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "attention_head_dim": 4,
    "cross_attention_dim": 32,
    "use_linear_projection": False,
    "norm_num_groups": 8,
    "norm_eps": 1e-5,
}

# The EMO layers and the audio projection of the small presets (`tiny`, `demo`).
_TINY_BACKBONE: dict[str, Any] = {
    "audio_cross_attention_dim": 32,
    "use_motion_modules": True,
    "temporal_in_mid_block": True,
    "motion_num_attention_heads": 4,
    "motion_max_positions": 32,
    "speed_embed_dim": 32,
}

_TINY_AUDIO_PROJECTION: dict[str, Any] = {
    "feature_dim": 80,
    "num_layers": 1,
    "context_frames": 2,
    "num_tokens": 4,
    "hidden_dim": 64,
    "output_dim": 32,
}

#: The shipped presets by name.
PRESETS: Mapping[str, ModelPreset] = MappingProxyType(
    {
        "sd15": _make(
            "sd15",
            dict(SD15_UNET_CONFIG),
            {
                "audio_cross_attention_dim": 768,
                "use_motion_modules": True,
                "temporal_in_mid_block": True,
                "motion_num_attention_heads": 8,
                "motion_max_positions": 32,
                "speed_embed_dim": 320,
            },
            dict(SD15_VAE_CONFIG),
            {"in_channels": 1, "out_channels": 4, "block_out_channels": (16, 32, 64, 128)},
            {
                "feature_dim": 768,
                "num_layers": 13,
                "context_frames": 2,
                "num_tokens": 4,
                "hidden_dim": 512,
                "output_dim": 768,
            },
            resolution=512,
            frames_per_clip=12,
            motion_frames=4,
            audio_token_dim=768,
        ),
        "demo": _make(
            "demo",
            {**_TINY_UNET, "attention_head_dim": 2},
            {**_TINY_BACKBONE, "motion_num_attention_heads": 2},
            {
                "in_channels": 3,
                "out_channels": 3,
                "down_block_types": ("DownEncoderBlock2D",) * 3,
                "up_block_types": ("UpDecoderBlock2D",) * 3,
                "block_out_channels": (16, 32, 64),
                "layers_per_block": 1,
                "latent_channels": 4,
                "norm_num_groups": 8,
                "sample_size": 64,
                "scaling_factor": 1.0,
                "mid_block_add_attention": False,
            },
            {"in_channels": 1, "out_channels": 4, "block_out_channels": (8, 16, 16)},
            _TINY_AUDIO_PROJECTION,
            resolution=64,
            frames_per_clip=8,
            motion_frames=2,
            audio_token_dim=32,
        ),
        "tiny": _make(
            "tiny",
            _TINY_UNET,
            _TINY_BACKBONE,
            {
                "in_channels": 3,
                "out_channels": 3,
                "down_block_types": ("DownEncoderBlock2D",) * 4,
                "up_block_types": ("UpDecoderBlock2D",) * 4,
                "block_out_channels": (16, 32, 32, 32),
                "layers_per_block": 1,
                "latent_channels": 4,
                "norm_num_groups": 8,
                "sample_size": 128,
                "scaling_factor": 0.18215,
            },
            {"in_channels": 1, "out_channels": 4, "block_out_channels": (8, 16, 16, 16)},
            _TINY_AUDIO_PROJECTION,
            resolution=128,
            frames_per_clip=8,
            motion_frames=2,
            audio_token_dim=32,
        ),
    }
)


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(PRESETS)


def get_preset(name: str) -> ModelPreset:
    """Return the preset called ``name`` (``"sd15"``, ``"tiny"`` or ``"demo"``).

    Raises
    ------
    ConfigError
        If there is no such preset.

    Examples
    --------
    >>> from emo.models.presets import get_preset
    >>> preset = get_preset("tiny")
    >>> preset.latent_size, preset.frames_per_clip
    (16, 8)
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown model preset {name!r}; choose one of {preset_names()}"
        ) from None
