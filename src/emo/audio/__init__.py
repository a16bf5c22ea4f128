"""Audio: loading, resampling, frame alignment and the audio-encoder plugins.

Importing this package is cheap: every name is imported from its defining module on
first use, and soundfile / PyAV / transformers only when a file is decoded or a
model is loaded.

======================================  ===============================================
name                                    defined in
======================================  ===============================================
``load_audio``, ``audio_duration``      :mod:`emo.audio.loading`
``resample``, ``StreamingResampler``    :mod:`emo.audio.resampling`
``num_video_frames``, ...               :mod:`emo.audio.alignment`
``AudioEncoder``, ``AudioEncoderBase``  :mod:`emo.audio.base`
``MelSpectrogramEncoder``               :mod:`emo.audio.mel` (plugin ``mel``)
``Wav2Vec2Encoder``                     :mod:`emo.audio.wav2vec2` (plugin ``wav2vec2``)
``WhisperEncoder``                      :mod:`emo.audio.whisper` (plugin ``whisper``)
======================================  ===============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.audio.alignment import frame_sample_positions, frame_to_sample, num_video_frames
    from emo.audio.base import AudioEncoder, AudioEncoderBase
    from emo.audio.loading import audio_duration, load_audio
    from emo.audio.mel import MelSpectrogramEncoder
    from emo.audio.resampling import StreamingResampler, resample
    from emo.audio.wav2vec2 import Wav2Vec2Encoder
    from emo.audio.whisper import WhisperEncoder

__all__ = [
    "AudioEncoder",
    "AudioEncoderBase",
    "MelSpectrogramEncoder",
    "StreamingResampler",
    "Wav2Vec2Encoder",
    "WhisperEncoder",
    "audio_duration",
    "frame_sample_positions",
    "frame_to_sample",
    "load_audio",
    "num_video_frames",
    "resample",
]

_LAZY = {
    "AudioEncoder": "emo.audio.base",
    "AudioEncoderBase": "emo.audio.base",
    "MelSpectrogramEncoder": "emo.audio.mel",
    "StreamingResampler": "emo.audio.resampling",
    "Wav2Vec2Encoder": "emo.audio.wav2vec2",
    "WhisperEncoder": "emo.audio.whisper",
    "audio_duration": "emo.audio.loading",
    "frame_sample_positions": "emo.audio.alignment",
    "frame_to_sample": "emo.audio.alignment",
    "load_audio": "emo.audio.loading",
    "num_video_frames": "emo.audio.alignment",
    "resample": "emo.audio.resampling",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
