"""Anti-aliased sample-rate conversion: a polyphase windowed-sinc resampler in torch.

The rate ratio is reduced to ``new / orig = n / o`` (coprime). Output sample ``j`` sits at
input position ``j * o / n`` and is a Kaiser-windowed sinc interpolation of the input,
low-passed at ``0.94 * min(orig, new) / 2`` Hz (64 zero crossings, Kaiser beta 9: flat
to about 91 % of the lower Nyquist frequency, at least 90 dB down above it), so
downsampling does not alias.
:class:`StreamingResampler` processes a signal block by block with exactly the same
result as one call of :func:`resample` on the whole signal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from emo.errors import AudioError, InputError

__all__ = ["StreamingResampler", "resample"]

_ZERO_CROSSINGS = 64
_ROLLOFF = 0.94
_KAISER_BETA = 9.0
_MAX_KERNEL = 1 << 26  # filter coefficients (float64 while built): 512 MiB per table


def _kernel(orig: int, new: int, dtype: torch.dtype) -> tuple[torch.Tensor, int, int, int]:
    """Return ``(kernel (n, 2w + o), w, o, n)`` for the reduced ratio ``n / o``."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    cutoff = _ROLLOFF * min(1.0, n / o)  # in units of the input Nyquist frequency
    width = math.ceil(_ZERO_CROSSINGS / cutoff)
    m = torch.arange(-width, width + o, dtype=torch.float64, device="cpu")  # input offsets
    phase = torch.arange(n, dtype=torch.float64, device="cpu")[:, None] * o / n  # (n, 1)
    d = m[None, :] - phase  # distance input - output position, in input samples
    window = torch.special.i0(_KAISER_BETA * torch.sqrt(torch.clamp(1 - (d / width) ** 2, min=0)))
    window = window / torch.special.i0(
        torch.tensor(_KAISER_BETA, dtype=torch.float64, device="cpu")
    )
    window = torch.where(d.abs() <= width, window, torch.zeros_like(window))
    kernel = cutoff * torch.sinc(cutoff * d) * window
    return kernel.to(dtype), width, o, n


def _check_rates(orig_rate: int, new_rate: int) -> None:
    for label, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise InputError(f"{label} must be a positive int (Hz), got {rate!r}")
    g = math.gcd(orig_rate, new_rate)
    o, n = orig_rate // g, new_rate // g
    taps = 2 * math.ceil(_ZERO_CROSSINGS / (_ROLLOFF * min(1.0, n / o))) + o
    if orig_rate != new_rate and n * taps > _MAX_KERNEL:
        raise AudioError(
            f"cannot resample {orig_rate} Hz to {new_rate} Hz exactly: the rates share no "
            f"useful common factor (ratio {n}/{o}) and the filter would need {n * taps:,} "
            "coefficients; convert the audio to a standard rate (16000, 22050, 44100 or "
            "48000 Hz) first"
        )


class StreamingResampler:
    """Resample a mono signal pushed block by block.

    Parameters
    ----------
    orig_rate
        Input sample rate in Hz.
    new_rate
        Output sample rate in Hz.
    dtype
        Compute dtype (float32 by default).

    Examples
    --------
    >>> r = StreamingResampler(44100, 16000)
    >>> parts = [r.push(torch.zeros(44100)), r.flush()]
    >>> sum(p.numel() for p in parts)
    16000
    """

    def __init__(self, orig_rate: int, new_rate: int, dtype: torch.dtype = torch.float32) -> None:
        _check_rates(orig_rate, new_rate)
        self.orig_rate = orig_rate
        self.new_rate = new_rate
        self._identity = orig_rate == new_rate
        kernel, self._width, self._o, self._n = _kernel(orig_rate, new_rate, dtype)
        self._kernel = kernel[:, None, :]  # (n, 1, taps)
        self._dtype = dtype
        # Buffer starts at input index q0 * o - width; the signal is zero before index 0.
        self._buffer = torch.zeros(self._width, dtype=dtype, device="cpu")
        self._pushed = 0
        self._emitted = 0

    def _run(self, buffer: torch.Tensor, count: int) -> torch.Tensor:
        """Compute ``count`` output groups (``count * n`` samples) from ``buffer``."""
        taps = self._kernel.shape[-1]
        need = (count - 1) * self._o + taps
        x = buffer[:need]
        if x.numel() < need:
            x = F.pad(x, (0, need - x.numel()))
        out = F.conv1d(x[None, None, :], self._kernel, stride=self._o)  # (1, n, count)
        return out[0].transpose(0, 1).reshape(-1)

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """Feed ``(samples,)`` more input; return the ``(samples',)`` output now computable."""
        block = block.to(self._dtype).reshape(-1)
        self._pushed += block.numel()
        if self._identity:
            self._emitted += block.numel()
            return block
        self._buffer = torch.cat([self._buffer, block])
        taps = self._kernel.shape[-1]
        if self._buffer.numel() < taps:
            return self._buffer.new_zeros(0)
        count = (self._buffer.numel() - taps) // self._o + 1
        out = self._run(self._buffer, count)
        self._buffer = self._buffer[count * self._o :].clone()
        self._emitted += out.numel()
        return out

    def flush(self) -> torch.Tensor:
        """Return the remaining output; the total is ``ceil(pushed * new_rate / orig_rate)``."""
        total = -(-self._pushed * self._n // self._o) if not self._identity else self._pushed
        remaining = total - self._emitted
        if remaining <= 0 or self._identity:
            return self._buffer.new_zeros(0)
        count = -(-remaining // self._n)
        out = self._run(self._buffer, count)[:remaining]
        self._emitted += out.numel()
        self._buffer = self._buffer.new_zeros(0)
        return out


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample a mono signal with an anti-aliased polyphase windowed-sinc filter.

    Parameters
    ----------
    waveform
        ``(samples,)`` float tensor.
    orig_rate
        Its sample rate in Hz.
    new_rate
        Wanted sample rate in Hz.

    Returns
    -------
    torch.Tensor
        ``(ceil(samples * new_rate / orig_rate),)`` tensor of the input's float dtype
        (float32 for integer input), on the input's device.
    """
    if not isinstance(waveform, torch.Tensor):
        raise InputError(
            f"resample needs a (samples,) torch.Tensor, got {type(waveform).__name__}; use "
            "torch.from_numpy for numpy arrays"
        )
    _check_rates(orig_rate, new_rate)
    if orig_rate == new_rate:
        return waveform
    dtype = waveform.dtype if waveform.is_floating_point() else torch.float32
    resampler = StreamingResampler(orig_rate, new_rate, dtype=dtype)
    resampler._kernel = resampler._kernel.to(waveform.device)
    resampler._buffer = resampler._buffer.to(waveform.device)
    return torch.cat([resampler.push(waveform), resampler.flush()])
