"""Networks: the UNet family (UNet2D, ReferenceNet, Backbone), temporal and audio parts, VAE.

Names are imported lazily on first access, so ``import emo.models`` stays cheap
and each module is loaded only when used.
"""

from __future__ import annotations

from emo._lazy import lazy_getattr

__all__ = [
    "Backbone",
    "Downsample2D",
    "ModelPreset",
    "MotionFeatures",
    "ReferenceFeatures",
    "ReferenceNet",
    "ResnetBlock2D",
    "UNet2D",
    "Upsample2D",
    "get_preset",
]

# Public name -> defining module; imported on first attribute access.
_LAZY: dict[str, str] = {
    "ResnetBlock2D": "emo.models.resnet",
    "Downsample2D": "emo.models.resnet",
    "Upsample2D": "emo.models.resnet",
    "UNet2D": "emo.models.unet_2d",
    "ReferenceNet": "emo.models.reference_net",
    "ReferenceFeatures": "emo.models.reference_net",
    "MotionFeatures": "emo.models.reference_net",
    "Backbone": "emo.models.backbone",
    "ModelPreset": "emo.models.presets",
    "get_preset": "emo.models.presets",
    # Parts owned by other modules of this package (imported only when present and asked for).
    "TemporalModule": "emo.models.temporal",
    "SpeedEncoder": "emo.models.speed",
    "FaceLocator": "emo.models.face_locator",
    "AudioProjection": "emo.models.audio_projection",
    "AutoencoderKL": "emo.models.vae",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
