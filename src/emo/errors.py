"""The exceptions and warnings emo raises.

Every error derives from :class:`EMOError`, so ``except emo.errors.EMOError``
catches anything emo reports on purpose. Each message names the offending input
(a path, a plugin name, a config key) and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioTooLongError",
    "CheckpointError",
    "ConfigArgumentError",
    "ConfigError",
    "CredentialsError",
    "EMOError",
    "EMOWarning",
    "FaceNotFoundError",
    "ImageError",
    "ImageTooLargeError",
    "InputError",
    "InputTooLargeError",
    "InsufficientMemoryError",
    "NumericalError",
    "OutputInUseError",
    "PluginContractError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "SpeechEngineError",
    "Terminated",
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


class CredentialsError(InputError):
    """Signing credentials (a certificate chain and private key for C2PA) are missing or unusable.

    Also raised when signing is asked for but the ``c2pa`` extra is not installed.
    """


class InputTooLargeError(InputError):
    """An input exceeds a size limit of :mod:`emo.limits` (refused before any work); raise the limit to accept it."""


class ImageTooLargeError(ImageError, InputTooLargeError):
    """A portrait image has more pixels than ``max_image_pixels`` (:mod:`emo.limits`)."""


class AudioTooLongError(AudioError, InputTooLargeError):
    """An audio track lasts longer than ``max_audio_seconds`` (:mod:`emo.limits`)."""


class OutputInUseError(EMOError):
    """Another process (or another writer in this one) is writing the same output path right now.

    Raised by video writers and by ``save_pretrained`` of models and pipelines.
    """


class InsufficientMemoryError(EMOError, MemoryError):
    """The model or the generation does not fit in memory (RAM or GPU); use a smaller size or more memory."""


class NumericalError(EMOError, FloatingPointError):
    """Values became NaN or infinite during generation (e.g. float16 overflow); try bfloat16 or float32."""


class FaceNotFoundError(InputError):
    """No face was found where one is needed; use the ``box`` or ``full`` face mask instead."""


class SpeechEngineError(EMOError):
    """A speech synthesiser needed to make training data (espeak-ng, festival) is missing or failed.

    Only :mod:`emo.datasets.synthetic`'s voice data needs one; the message names the engine
    and the ``apt-get`` command that installs it.
    """


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


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP) while emo handled it.

    Raised by :func:`emo.interrupts.stop_on_signals` in the main thread. It derives
    from :class:`KeyboardInterrupt`, not :class:`EMOError`, so every cleanup that runs
    on Ctrl-C runs for it too and ``except Exception`` does not swallow it.

    Attributes
    ----------
    signum
        The signal number.
    """

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"stopped by {name}")
        self.signum = signum
        self.signal_name = name
