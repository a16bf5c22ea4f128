"""``mel``: a log-mel spectrogram audio encoder with no weights (works out of the box)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from emo.audio._dsp import mel_filterbank, take
from emo.audio.alignment import rounded_frame_samples
from emo.audio.base import AudioEncoderBase
from emo.errors import ConfigError

__all__ = ["MelSpectrogramEncoder"]

_FRAMES_PER_BLOCK = 2048


class MelSpectrogramEncoder(AudioEncoderBase):
    """Log-mel spectra sampled exactly at the video frame times.

    For video frame ``i`` and step ``j < sub_frames`` the encoder takes the ``n_fft``
    samples centred on sample ``round((i + j / sub_frames) * sample_rate / fps)`` (zeros
    outside the audio), applies a periodic Hann window, and returns
    ``log(max(mel_power, log_floor))`` of that window. Each step is one "layer", so
    :meth:`encode` returns ``(f, sub_frames, n_mels)``.

    Because every window is placed by exact integer arithmetic, encoding a slice that
    starts at sample ``a * sample_rate / fps`` (a whole number) gives exactly frames
    ``a ..`` of the whole-file result, except within ``n_fft / 2`` samples of the
    slice edges.

    Parameters
    ----------
    sample_rate
        Rate the spectrogram is computed at (input is resampled to it).
    n_mels
        Number of mel bands: the feature size ``d``.
    n_fft
        Window (and FFT) length in samples (1024 at 16 kHz = 64 ms, more than a frame
        at 25 fps, so no audio between frames is skipped).
    f_min
        Lowest mel filter edge in Hz.
    f_max
        Highest mel filter edge in Hz (default: ``sample_rate / 2``).
    sub_frames
        Spectra per video frame, evenly spaced in time; the number of "layers".
    log_floor
        Mel power floor before the log (silence gives ``log(log_floor)``).

    Examples
    --------
    >>> enc = MelSpectrogramEncoder(n_mels=40)
    >>> enc.encode(torch.zeros(16000), 16000, num_frames=25, fps=25).shape
    torch.Size([25, 1, 40])
    """

    name: ClassVar[str] = "mel"
    description: ClassVar[str] = "log-mel spectrogram at the video frame times; no weights"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_fft: int = 1024,
        f_min: float = 0.0,
        f_max: float | None = None,
        sub_frames: int = 1,
        log_floor: float = 1e-5,
    ) -> None:
        for label, value in (("sample_rate", sample_rate), ("n_mels", n_mels),
                             ("n_fft", n_fft), ("sub_frames", sub_frames)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"MelSpectrogramEncoder: {label} must be an int >= 1, got {value!r}"
                )
        top = sample_rate / 2 if f_max is None else f_max
        if not 0 <= f_min < top <= sample_rate / 2:
            raise ConfigError(
                f"MelSpectrogramEncoder: need 0 <= f_min < f_max <= sample_rate / 2, got "
                f"f_min={f_min}, f_max={f_max}, sample_rate={sample_rate}"
            )
        if not log_floor > 0:
            raise ConfigError(f"MelSpectrogramEncoder: log_floor must be > 0, got {log_floor}")
        self.sample_rate = sample_rate
        self.feature_dim = n_mels
        self.num_layers = sub_frames
        self.n_fft = n_fft
        self.log_floor = float(log_floor)
        self._filters = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
        self._window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device="cpu")

    def encode(
        self, waveform: Any, sample_rate: int, *, num_frames: int, fps: float
    ) -> torch.Tensor:
        """Return ``(f, sub_frames, n_mels)`` log-mel features, frame ``i`` at time ``i / fps``.

        The arguments are those of :meth:`AudioEncoderBase.encode
        <emo.audio.base.AudioEncoderBase.encode>`.
        """
        fr = self.check_frames(num_frames, fps)
        x = self.prepare_waveform(waveform, sample_rate).cpu()
        centres = rounded_frame_samples(num_frames, self.sample_rate, fr, self.num_layers)
        starts = centres.reshape(-1) - self.n_fft // 2
        out = torch.empty(starts.numel(), self.feature_dim, dtype=torch.float32, device="cpu")
        offsets = torch.arange(self.n_fft, device="cpu")
        for b in range(0, starts.numel(), _FRAMES_PER_BLOCK):
            block = starts[b : b + _FRAMES_PER_BLOCK]
            lo, hi = int(block[0]), int(block[-1]) + self.n_fft
            segment = take(x, lo, hi)
            frames = segment[(block - lo)[:, None] + offsets[None, :]] * self._window
            power = torch.fft.rfft(frames, dim=-1).abs().pow(2)
            mel = power @ self._filters
            out[b : b + block.numel()] = torch.log(mel.clamp(min=self.log_floor))
        return out.reshape(num_frames, self.num_layers, self.feature_dim)
