"""Vocal separation's contract on small ONNX models of MDX-Net's signature.

The models do known things to the spectrum (``mdx_onnx_models.py``): passing it through must
give back the band-limited mix (STFT round trip and overlap averaging exact), zeroing it
gives silence, scaling it scales the vocals, and so on, at any length and batch size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from mdx_onnx_models import build_mdx_model

from emo.audio.vocals import MDXConfig, VocalSeparator
from emo.audio.vocals.spectrum import (
    from_model_output,
    model_window,
    to_model_input,
)

# A small MDX-Net: one call is 31 x 256 = 7936 samples, the next starts 5952 later.
SMALL = MDXConfig(n_fft=1024, hop_length=256, dim_f=384, dim_t=32, compensate=1.25)
RATE = SMALL.sample_rate


def tones(samples: int, rate: int = RATE) -> np.ndarray:
    """``(2, samples)`` float32 tones well inside the small model's band (2 .. 9 kHz: above the
    zeroed bins and below ``dim_f``, with room for the window's leakage), peak below 0.9.

    Tones above 0.4 ``rate`` are left out.
    """
    t = np.arange(samples) / rate
    parts = ((0.2, 2000.0), (0.15, 3500.0), (0.1, 5200.0), (0.05, 9000.0))
    left = sum(
        a * np.sin(2 * np.pi * f * t + k) for k, (a, f) in enumerate(parts) if f < 0.4 * rate
    )
    right = 0.3 * np.sin(2 * np.pi * (2500 * t + 500 * t**2))
    return np.stack([left, right]).astype(np.float32)


def separator(
    tmp_path: Path, kind: str, config: MDXConfig = SMALL, **options: object
) -> VocalSeparator:
    path = build_mdx_model(
        tmp_path / f"{kind}.onnx", kind, dim_f=config.dim_f, dim_t=config.dim_t,
        factor=float(options.pop("factor", 1.0)),  # type: ignore[arg-type]
    )  # fmt: skip
    return VocalSeparator(path, config=config, **options)  # type: ignore[arg-type]


def test_spectrum_layout_is_left_re_im_then_right_re_im() -> None:
    chunks = torch.from_numpy(tones(SMALL.chunk_size)[None])
    spec = to_model_input(chunks, SMALL, model_window(SMALL))
    assert spec.shape == (1, 4, SMALL.dim_f, SMALL.dim_t)
    for channel in range(2):
        ref = torch.stft(
            chunks[0, channel], SMALL.n_fft, SMALL.hop_length,
            window=torch.hann_window(SMALL.n_fft, periodic=True), return_complex=True,
        )[: SMALL.dim_f]  # fmt: skip
        ref[: SMALL.zeroed_bins] = 0
        torch.testing.assert_close(spec[0, 2 * channel], ref.real)
        torch.testing.assert_close(spec[0, 2 * channel + 1], ref.imag)
    assert not spec[:, :, : SMALL.zeroed_bins].any()


def test_spectrum_round_trip_gives_back_band_limited_audio() -> None:
    audio = tones(SMALL.chunk_size)
    window = model_window(SMALL)
    back = from_model_output(
        to_model_input(torch.from_numpy(audio[None]), SMALL, window), SMALL, window
    )
    assert back.shape == (1, 2, SMALL.chunk_size)
    # Away from the chunk's edges (reflect padding there) the bins cut hold nothing.
    inner = slice(SMALL.n_fft, -SMALL.n_fft)
    err = np.abs(back[0].numpy()[:, inner] - audio[:, inner]).max()
    assert err < 2e-4, err


def faded(audio: np.ndarray) -> np.ndarray:
    """``audio`` faded in and out over ``n_fft`` samples (no step at its ends: a step would
    spread into the bins the model does not see)."""
    n = min(SMALL.n_fft, audio.shape[-1] // 2)
    ramp = np.sin(np.linspace(0, np.pi / 2, n)) ** 2
    out = audio.copy()
    out[..., :n] *= ramp
    out[..., -n:] *= ramp[::-1]
    return out.astype(np.float32)


@pytest.mark.parametrize("samples", [700, 7936, 20_000, 61_234])
@pytest.mark.parametrize("overlap", [0.25, 0.0, 0.6])
def test_identity_model_with_all_bins_gives_back_any_mix_exactly(
    tmp_path: Path, samples: int, overlap: float
) -> None:
    # All bins in, none zeroed: STFT round trip and overlap averaging are exact for any
    # audio, steps and noise included, at any length and overlap.
    config = MDXConfig(**{**SMALL.__dict__, "overlap": overlap, "dim_f": 513, "zeroed_bins": 0})
    noise = np.random.default_rng(samples).uniform(-0.5, 0.5, (2, samples)).astype(np.float32)
    vocals = separator(tmp_path, "identity", config).separate_stereo(noise, RATE)
    assert vocals.shape == noise.shape and vocals.dtype == np.float32
    np.testing.assert_allclose(vocals, config.compensate * noise, rtol=0, atol=1e-6)


@pytest.mark.parametrize("samples", [700, 7936, 20_000, 61_234])
@pytest.mark.parametrize("overlap", [0.25, 0.6])
def test_identity_model_gives_back_the_band_limited_mix(
    tmp_path: Path, samples: int, overlap: float
) -> None:
    # With UVR's band limits (bins above dim_f dropped, the lowest 3 zeroed) in-band audio
    # comes back but for the calls' edges: there the STFT sees reflect padding, whose spread
    # into the dropped bins is lost; the Hann weights make it small.
    config = MDXConfig(**{**SMALL.__dict__, "overlap": overlap})
    mix = faded(tones(samples))
    vocals = separator(tmp_path, "identity", config).separate_stereo(mix, RATE)
    assert vocals.shape == mix.shape
    err = np.abs(vocals - config.compensate * mix).max()
    assert err < 3e-4, err


def test_without_overlap_the_calls_meet_unweighted(tmp_path: Path) -> None:
    # overlap=0: the calls abut with equal weights, as in audio-separator; the error stays
    # where two calls meet (within n_fft of the boundary).
    config = MDXConfig(**{**SMALL.__dict__, "overlap": 0.0})
    mix = faded(tones(61_234))
    err = np.abs(separator(tmp_path, "identity", config).separate_stereo(mix, RATE) - 1.25 * mix)
    err = err.max(axis=0)
    boundary = np.zeros(mix.shape[1], bool)
    for start in range(config.chunk_size, mix.shape[1] + config.trim, config.chunk_size):
        at = start - config.trim
        boundary[max(0, at - config.n_fft) : at + config.n_fft] = True
    assert err[~boundary].max() < 3e-4 < err[boundary].max()


def test_zero_model_gives_silence_and_scale_model_scales(tmp_path: Path) -> None:
    mix = tones(30_000)
    silent = separator(tmp_path, "scale", factor=0.0).separate(mix, RATE)
    assert silent.shape == (30_000,) and not silent.any()
    base = separator(tmp_path, "identity").separate_stereo(mix, RATE)
    half = separator(tmp_path, "scale", factor=0.5).separate_stereo(mix, RATE)
    np.testing.assert_allclose(half, 0.5 * base, atol=1e-6)


def test_loud_vocals_are_limited_to_the_peak(tmp_path: Path) -> None:
    mix = tones(30_000)
    loud = separator(tmp_path, "scale", factor=4.0)
    stereo = loud.separate_stereo(mix, RATE)
    assert np.abs(stereo).max() == pytest.approx(SMALL.peak, rel=1e-6)
    base = separator(tmp_path, "identity").separate_stereo(mix, RATE)
    np.testing.assert_allclose(stereo, base * (SMALL.peak / np.abs(base).max()), atol=2e-6)
    # The mono result is the channels' mean with the stereo stem's scaling.
    mono = loud.separate(mix, RATE).numpy()
    np.testing.assert_allclose(mono, stereo.mean(axis=0), atol=1e-6)


def test_loud_mix_is_scaled_before_the_model(tmp_path: Path) -> None:
    # The model is not linear (tanh), so the order matters: scaling the mix to peak 0.9
    # first is the same as separating the scaled mix.
    mix = tones(30_000)
    loud = mix * np.float32(5.0 / np.abs(mix).max())
    quiet = mix * np.float32(0.9 / np.abs(mix).max())
    sep = separator(tmp_path, "mix")
    np.testing.assert_allclose(
        sep.separate_stereo(loud, RATE), sep.separate_stereo(quiet, RATE), atol=1e-6
    )
    assert not np.allclose(
        sep.separate_stereo(quiet * np.float32(0.5), RATE) * 2,
        sep.separate_stereo(quiet, RATE),
        atol=1e-4,
    )


def test_batch_size_and_layouts_do_not_change_the_result(tmp_path: Path) -> None:
    mix = tones(40_000)
    one = separator(tmp_path, "mix").separate_stereo(mix, RATE)
    three = separator(tmp_path, "mix", batch_size=3).separate_stereo(mix, RATE)
    np.testing.assert_allclose(three, one, atol=1e-6)
    # (samples, channels) is read as (channels, samples); tensors as arrays.
    sep = separator(tmp_path, "mix")
    np.testing.assert_array_equal(sep.separate_stereo(mix.T.copy(), RATE), one)
    np.testing.assert_array_equal(sep.separate_stereo(torch.from_numpy(mix), RATE), one)
    # Mono is duplicated to both channels.
    mono = separator(tmp_path, "mix").separate_stereo(mix[0], RATE)
    both = separator(tmp_path, "mix").separate_stereo(np.stack([mix[0], mix[0]]), RATE)
    np.testing.assert_array_equal(mono, both)


def test_other_rates_are_resampled_in_and_out(tmp_path: Path) -> None:
    rate = 16_000
    mix = faded(tones(48_000, rate)[0] * np.float32(2.0))  # mono, louder than 0.9
    sep = separator(tmp_path, "identity")
    vocals = sep.separate(mix, rate).numpy()
    assert vocals.shape == (48_000,) and vocals.dtype == np.float32
    # identity: the mix comes back at 16 kHz, its stem (at 44.1 kHz) limited to the 0.9 peak.
    assert 0.85 < np.abs(vocals).max() <= 0.9
    gain = float(vocals @ mix / (mix @ mix))
    assert np.abs(vocals - gain * mix).max() < 1e-3
    assert sep.separate(mix, rate, output_rate=8000).shape == (math.ceil(48_000 * 8000 / rate),)


def test_progress_callback_counts_every_call(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    separator(tmp_path, "identity", batch_size=2).separate(
        tones(40_000), RATE, callback=lambda done, total: seen.append((done, total))
    )
    total = seen[-1][1]
    # 40,000 samples + 512 zeros before: calls start every 5952 samples below 40,512.
    assert total == math.ceil((40_000 + SMALL.trim) / SMALL.step)
    assert [d for d, _ in seen] == [min(2 * (i + 1), total) for i in range(math.ceil(total / 2))]


def test_separate_file_reads_stereo_and_matches_the_array(tmp_path: Path) -> None:
    import soundfile as sf

    mix = tones(30_000)
    sf.write(tmp_path / "song.flac", mix.T, RATE, subtype="PCM_24")
    read, _ = sf.read(tmp_path / "song.flac", dtype="float32", always_2d=True)
    sep = separator(tmp_path, "mix")
    from_file = sep.separate_file(tmp_path / "song.flac", output_rate=16_000)
    np.testing.assert_array_equal(
        from_file.numpy(), sep.separate(read.T, RATE, output_rate=16_000).numpy()
    )
    # Stereo matters: the mono mix gives another result.
    assert not np.allclose(
        from_file.numpy(),
        sep.separate(read.mean(axis=1), RATE, output_rate=16_000).numpy(),
        atol=1e-3,
    )


def test_long_audio_streams_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    import soundfile as sf

    # The small model at 8 kHz; files of 3 and 12 minutes (11 and 46 MB of float32 stereo).
    config = MDXConfig(**{**SMALL.__dict__, "sample_rate": 8000})
    sep = separator(tmp_path, "identity", config)
    block = tones(8000 * 30, rate=8000) * np.float32(0.5)
    peaks = []
    for minutes in (3, 12):
        path = tmp_path / f"long{minutes}.wav"
        with sf.SoundFile(path, "w", 8000, 2, subtype="FLOAT") as handle:
            for _ in range(2 * minutes):
                handle.write(block.T)
        tracemalloc.start()
        try:
            vocals = sep.separate_file(path, output_rate=100)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert vocals.shape == (minutes * 60 * 100,)
    # numpy's buffers in flight (a few blocks and calls) do not grow with the audio.
    assert peaks[1] < 1.1 * peaks[0] + 1e6 and peaks[1] < 46e6 / 3, peaks
