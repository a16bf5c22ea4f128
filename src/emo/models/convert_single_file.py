"""Deprecated: the importer of single-file Stable Diffusion checkpoints moved to :mod:`emo.loaders.single_file`.

Every name read from this module is looked up there and raises a
:class:`DeprecationWarning`; import from :mod:`emo.loaders.single_file` instead.
"""

from emo._deprecation import moved_module

__getattr__ = moved_module(__name__, "emo.loaders.single_file")
