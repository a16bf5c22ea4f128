"""Deprecated: the importer of AnimateDiff motion modules moved to :mod:`emo.loaders.animatediff`.

Every name read from this module is looked up there and raises a
:class:`DeprecationWarning`; import from :mod:`emo.loaders.animatediff` instead.
"""

from emo._deprecation import moved_module

__getattr__ = moved_module(__name__, "emo.loaders.animatediff")
