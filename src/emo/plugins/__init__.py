"""The plugin registry for emo's four plugin kinds.

=================  ======================  ============================================
kind               entry-point group       contract
=================  ======================  ============================================
``audio_encoder``  ``emo.audio_encoders``  :class:`emo.audio.base.AudioEncoder`
``scheduler``      ``emo.schedulers``      :class:`emo.schedulers.base.Scheduler`
``face_mask``      ``emo.face_masks``      :class:`emo.face_masks.base.FaceMask`
``video_writer``   ``emo.video_writers``   :class:`emo.io.writers.base.VideoWriter`
=================  ======================  ============================================
"""

from emo.plugins.base import PluginBase
from emo.plugins.kinds import KINDS, KindSpec, normalize_kind
from emo.plugins.registry import (
    BUILTIN_DISTRIBUTION,
    DISABLE_ENV,
    PluginInfo,
    PluginStatus,
    available,
    check,
    create,
    list_plugins,
    load,
    plugin_name_of,
    refresh,
    register,
    unregister,
)

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "DISABLE_ENV",
    "KINDS",
    "KindSpec",
    "PluginBase",
    "PluginInfo",
    "PluginStatus",
    "available",
    "check",
    "create",
    "list_plugins",
    "load",
    "normalize_kind",
    "plugin_name_of",
    "refresh",
    "register",
    "unregister",
]
