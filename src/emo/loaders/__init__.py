"""Checkpoint importers: weights that a user already has on disk, into emo's networks.

One style for every format: a module per format with plain functions that read
files into ``(config, state_dict)`` pairs in emo's parameter names, and build a
network from them when given its class. The networks in :mod:`emo.models`
offer the common cases as classmethods that call these functions
(:meth:`Backbone.from_unet2d <emo.models.Backbone.from_unet2d>`,
:meth:`AutoencoderKL.from_diffusers <emo.models.vae.AutoencoderKL.from_diffusers>`,
...); no importer imports those networks back.

- :mod:`emo.loaders.diffusers_unet`: a diffusers-format Stable Diffusion 1.x
  UNet folder -> UNet2D, ReferenceNet or Backbone;
- :mod:`emo.loaders.diffusers_vae`: a diffusers-format VAE folder;
- :mod:`emo.loaders.single_file`: an original single-file SD 1.x checkpoint
  (LDM layout), UNet and VAE, both directions;
- :mod:`emo.loaders.animatediff`: AnimateDiff motion-module weights -> the
  Backbone's temporal modules.

Names are imported lazily on first access, so ``import emo.loaders`` is cheap.
"""

from __future__ import annotations

from emo._lazy import lazy_getattr

__all__ = [
    "build_from_unet_source",
    "build_vae",
    "convert_diffusers_vae_state_dict",
    "convert_ldm_unet_state_dict",
    "convert_ldm_vae_state_dict",
    "convert_motion_module_state_dict",
    "load_diffusers_vae",
    "load_ldm_vae_single_file",
    "load_motion_module_weights",
    "load_pretrained_unet",
    "load_sd15_single_file",
    "load_sd15_unet_state_dict",
    "load_single_file_vae",
    "load_spatial_weights",
    "read_diffusers_vae",
    "unet_config_from_diffusers",
    "vae_config_from_diffusers",
]

# Public name -> defining module; imported on first attribute access.
_LAZY: dict[str, str] = {
    "build_from_unet_source": "emo.loaders.diffusers_unet",
    "load_pretrained_unet": "emo.loaders.diffusers_unet",
    "load_sd15_unet_state_dict": "emo.loaders.diffusers_unet",
    "load_spatial_weights": "emo.loaders.diffusers_unet",
    "unet_config_from_diffusers": "emo.loaders.diffusers_unet",
    "build_vae": "emo.loaders.diffusers_vae",
    "convert_diffusers_vae_state_dict": "emo.loaders.diffusers_vae",
    "load_diffusers_vae": "emo.loaders.diffusers_vae",
    "read_diffusers_vae": "emo.loaders.diffusers_vae",
    "vae_config_from_diffusers": "emo.loaders.diffusers_vae",
    "convert_ldm_unet_state_dict": "emo.loaders.single_file",
    "convert_ldm_vae_state_dict": "emo.loaders.single_file",
    "load_ldm_vae_single_file": "emo.loaders.single_file",
    "load_sd15_single_file": "emo.loaders.single_file",
    "load_single_file_vae": "emo.loaders.single_file",
    "convert_motion_module_state_dict": "emo.loaders.animatediff",
    "load_motion_module_weights": "emo.loaders.animatediff",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
