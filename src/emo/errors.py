"""The exceptions and warnings emo raises.

Every error derives from :class:`EMOError`, so ``except emo.errors.EMOError``
catches anything emo reports on purpose. Each message names the offending input
(a path, a plugin name, a config key) and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "CheckpointError",
    "ConfigArgumentError",
    "ConfigError",
    "EMOError",
    "EMOWarning",
    "FaceNotFoundError",
    "ImageError",
    "InputError",
    "PluginContractError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "VideoError",
]


class EMOError(Exception):
    """Base class of every error emo raises on purpose."""


class EMOWarning(UserWarning):
    """Base class of every warning emo emits."""


class InputError(EMOError, ValueError):
    """A user input (file, array, argument) is missing, malformed or unusable."""


class AudioError(InputError):
    """An audio input is missing, not audio, corrupt, empty or holds NaN/inf samples."""


class ImageError(InputError):
    """An image input is missing, not an image, corrupt or of an unsupported shape."""


class VideoError(InputError):
    """A video cannot be read or written (bad path, unsupported format, codec failure)."""


class FaceNotFoundError(InputError):
    """No face was found where one is needed; use the ``box`` or ``full`` face mask instead."""


class PluginError(EMOError):
    """Base class of plugin registry errors."""


class PluginNotFoundError(PluginError, KeyError):
    """No plugin of that kind is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class PluginLoadError(PluginError, ImportError):
    """A plugin's entry point exists but importing it failed."""


class PluginContractError(PluginError, TypeError):
    """A plugin object does not satisfy the contract of its kind."""


class ConfigError(EMOError, ValueError):
    """A configuration is invalid: unknown class, bad value, not JSON-serialisable."""


class ConfigArgumentError(ConfigError, TypeError):
    """Arguments do not fit a component's ``__init__`` (unknown or missing); also a ``TypeError``."""


class CheckpointError(EMOError):
    """Weights on disk do not fit the model: missing or unexpected keys, shape mismatch, bad file."""
