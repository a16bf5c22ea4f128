"""Bad input to audio loading, resampling and the encoders gets an emo error.

Each case once escaped as a raw TypeError, NotImplementedError, AttributeError,
RuntimeError (out of memory, transformers' loading report) or SafetensorError.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.audio import MelSpectrogramEncoder, audio_duration, load_audio, resample
from emo.audio.resampling import StreamingResampler
from emo.audio.wav2vec2 import Wav2Vec2Encoder
from emo.audio.whisper import WhisperEncoder
from emo.errors import AudioError, CheckpointError, ConfigError, InputError


# -- loading -----------------------------------------------------------------------------------
def test_load_audio_rejects_meta_tensors() -> None:
    with pytest.raises(AudioError, match="meta"):
        load_audio(torch.zeros(100, device="meta"), sample_rate=16000, source_rate=16000)


@pytest.mark.parametrize("source", [None, np.zeros(3), 5])
def test_audio_duration_rejects_non_paths(source: Any) -> None:
    with pytest.raises(AudioError, match="path must be a str"):
        audio_duration(source)


# -- resampling --------------------------------------------------------------------------------
def test_resampling_between_coprime_rates_is_refused_not_allocated() -> None:
    # 999983 Hz (prime) -> 16 kHz used to try to allocate a 129 GB filter table.
    with pytest.raises(AudioError, match="cannot resample 999983 Hz to 16000 Hz"):
        load_audio(np.zeros(100), sample_rate=16000, source_rate=999983)
    with pytest.raises(AudioError, match="standard rate"):
        StreamingResampler(44101, 16000)


def test_common_rates_still_resample() -> None:
    for rate in (8000, 11025, 22050, 44100, 48000, 96000, 192000, 44056):
        assert resample(torch.zeros(rate // 10), rate, 16000).numel() == 1600


def test_resample_rejects_numpy() -> None:
    with pytest.raises(InputError, match="torch.Tensor"):
        resample(np.zeros(10), 16000, 8000)  # type: ignore[arg-type]


# -- encoders ----------------------------------------------------------------------------------
def test_encoder_rejects_non_numeric_and_meta_waveforms() -> None:
    mel = MelSpectrogramEncoder()
    with pytest.raises(AudioError, match="dtype <U1"):
        mel.encode(np.array(["a"]), 16000, num_frames=2, fps=25)
    with pytest.raises(AudioError, match="meta"):
        mel.encode(torch.zeros(100, device="meta"), 16000, num_frames=2, fps=25)


def test_wav2vec2_model_path_must_be_a_path() -> None:
    with pytest.raises(CheckpointError, match="must be a local folder path"):
        Wav2Vec2Encoder(None)  # type: ignore[arg-type]


def test_wav2vec2_chunk_seconds_must_be_a_number(wav2vec2_dir: Path) -> None:
    with pytest.raises(ConfigError, match="chunk_seconds must be a number"):
        Wav2Vec2Encoder(str(wav2vec2_dir), chunk_seconds="1")  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "json_list"])
def test_wav2vec2_corrupt_folders(wav2vec2_dir: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(wav2vec2_dir, folder)
    weights = folder / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage":
        weights.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="cannot load a wav2vec2 model"):
        Wav2Vec2Encoder(str(folder))


def test_wav2vec2_on_a_folder_of_another_model(wav2vec2_dir: Path, tmp_path: Path) -> None:
    # A config whose sizes disagree with the weights: transformers raises RuntimeError.
    import json

    folder = tmp_path / "model"
    shutil.copytree(wav2vec2_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"] *= 2  # disagrees with the saved weights
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="cannot load a wav2vec2 model"):
        Wav2Vec2Encoder(str(folder))


def test_whisper_bad_config_json_and_chunk(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="cannot read a Whisper config"):
        WhisperEncoder(str(tmp_path))


@pytest.mark.parametrize("chunk", [0, -1.0, "2"])
def test_whisper_chunk_seconds_must_be_positive(tmp_path: Path, chunk: Any) -> None:
    from transformers import WhisperConfig

    WhisperConfig(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_source_positions=100,
    ).save_pretrained(tmp_path)
    # The chunk is checked before any weight is read, so a config is enough.
    with pytest.raises(ConfigError, match="chunk_seconds must be"):
        WhisperEncoder(str(tmp_path), chunk_seconds=chunk, context_seconds=0.4)


def test_bad_array_shape_message_names_the_dimensions() -> None:
    with pytest.raises(AudioError, match=r"audio array of shape \(2, 2, 2\) has 3 dimensions"):
        load_audio(np.zeros((2, 2, 2)), sample_rate=16000, source_rate=16000)
