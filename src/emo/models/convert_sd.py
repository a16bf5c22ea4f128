"""Deprecated: the importer of Stable Diffusion UNet folders moved to :mod:`emo.loaders.diffusers_unet`.

Every name read from this module is looked up there and raises a
:class:`DeprecationWarning`; import from :mod:`emo.loaders.diffusers_unet` instead.
"""

from emo._deprecation import moved_module

__getattr__ = moved_module(__name__, "emo.loaders.diffusers_unet")
