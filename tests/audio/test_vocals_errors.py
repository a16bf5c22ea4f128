"""Vocal separation: finding Hallo's model, the checks on the file and on the input, the errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from mdx_onnx_models import build_mdx_model

from emo.audio.vocals import (
    KIM_VOCAL_2,
    MDXConfig,
    SupportsVocalSeparation,
    VocalSeparator,
    find_separator,
)
from emo.audio.vocals.config import KNOWN_MODELS, model_config, uvr_hash
from emo.errors import AudioError, CheckpointError, ConfigError, PluginLoadError

SMALL = MDXConfig(n_fft=1024, hop_length=256, dim_f=384, dim_t=32)


def hallo_folder(tmp_path: Path, config: MDXConfig = SMALL, **kwargs: object) -> Path:
    root = tmp_path / "pretrained_models"
    (root / "audio_separator").mkdir(parents=True)
    build_mdx_model(
        root / "audio_separator" / "Kim_Vocal_2.onnx", "identity", dim_f=config.dim_f,
        dim_t=config.dim_t, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    return root


def test_kim_vocal_2_is_known_by_its_uvr_hash() -> None:
    # UVR's model data for the file Hallo ships (66,759,214 bytes): hash of its last
    # 10,000 KiB -> these settings.
    name, config = KNOWN_MODELS["970b3f9492014d18fefeedfe4773cb42"]
    assert name == "Kim_Vocal_2" and config is KIM_VOCAL_2
    assert (config.n_fft, config.hop_length, config.dim_f, config.dim_t) == (7680, 1024, 3072, 256)
    assert (config.compensate, config.overlap, config.sample_rate) == (1.009, 0.25, 44100)
    assert (config.chunk_size, config.trim, config.step) == (261_120, 3840, 195_840)


def test_uvr_hash_reads_the_last_10000_kib(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * (50 * 1024)  # 12.5 MiB
    (tmp_path / "big.onnx").write_bytes(data)
    assert uvr_hash(tmp_path / "big.onnx") == hashlib.md5(data[-10000 * 1024 :]).hexdigest()
    (tmp_path / "small.onnx").write_bytes(data[:1000])
    assert uvr_hash(tmp_path / "small.onnx") == hashlib.md5(data[:1000]).hexdigest()


def test_find_separator_in_a_hallo_folder(tmp_path: Path) -> None:
    assert find_separator(tmp_path) is None  # no separation model: None, no error
    root = hallo_folder(tmp_path)
    for folder in (root, tmp_path):  # pretrained_models or the folder above it
        separator = find_separator(folder, config=SMALL)
        assert isinstance(separator, VocalSeparator)
        assert separator.model_path == root / "audio_separator" / "Kim_Vocal_2.onnx"
        assert isinstance(separator, SupportsVocalSeparation) and separator.sample_rate == 44100
    # A file that is not the real Kim_Vocal_2 is refused without explicit settings, when it
    # is used (a pipeline may hold a separator it never uses).
    separator = find_separator(root)
    assert separator is not None
    with pytest.raises(CheckpointError, match=r"UVR hash is [0-9a-f]{32}.*download it again"):
        separator.separate(np.zeros(1000, np.float32), 16000)
    with pytest.raises(CheckpointError, match=r"UVR hash is [0-9a-f]{32}"):
        assert separator.sample_rate
    with pytest.raises(CheckpointError, match=r"not an MDX-Net model emo knows"):
        model_config(root / "audio_separator" / "Kim_Vocal_2.onnx")


def test_from_hallo_folder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        CheckpointError, match=r"audio_separator/Kim_Vocal_2.onnx.*--no-vocal-separation"
    ):
        VocalSeparator.from_hallo_folder(tmp_path)
    root = hallo_folder(tmp_path)
    assert VocalSeparator.from_hallo_folder(root, config=SMALL).config is SMALL


def test_wrong_input_shape_names_the_file_and_the_shapes(tmp_path: Path) -> None:
    root = hallo_folder(tmp_path, input_shape=["batch", 4, 2048, 256])
    separator = VocalSeparator.from_hallo_folder(root, config=KIM_VOCAL_2)
    with pytest.raises(
        CheckpointError,
        match=r"Kim_Vocal_2.onnx: the model's input is .*\[.*2048, 256\].*\(batch, 4, 3072, 256\)",
    ):
        separator.load()
    # The shape is checked when the model is opened: before any audio is read.
    with pytest.raises(CheckpointError, match="the model's input"):
        separator.separate(np.zeros(1000, np.float32), 44100)


def test_wrong_output_shape_is_an_error(tmp_path: Path) -> None:
    path = build_mdx_model(tmp_path / "crop.onnx", "crop", dim_f=SMALL.dim_f, dim_t=SMALL.dim_t)
    separator = VocalSeparator(path, config=SMALL)
    with pytest.raises(
        CheckpointError, match=r"crop.onnx: the model returned shape \(1, 4, 383, 32\)"
    ):
        separator.separate(np.zeros(1000, np.float32), 44100)


def test_fixed_batch_models_run_call_by_call(tmp_path: Path) -> None:
    fixed = build_mdx_model(
        tmp_path / "fixed.onnx", "identity", dim_f=SMALL.dim_f, dim_t=SMALL.dim_t,
        input_shape=[1, 4, SMALL.dim_f, SMALL.dim_t],
    )  # fmt: skip
    free = build_mdx_model(tmp_path / "free.onnx", "identity", dim_f=SMALL.dim_f, dim_t=SMALL.dim_t)
    mix = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 30_000)).astype(np.float32)
    a = VocalSeparator(fixed, config=SMALL, batch_size=3).separate_stereo(mix, 44100)
    b = VocalSeparator(free, config=SMALL, batch_size=3).separate_stereo(mix, 44100)
    np.testing.assert_array_equal(a, b)


def test_damaged_or_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"missing.onnx does not exist"):
        VocalSeparator(tmp_path / "missing.onnx", config=SMALL)
    (tmp_path / "junk.onnx").write_bytes(b"not a model" * 100)
    with pytest.raises(
        CheckpointError, match=r"onnxruntime cannot load the MDX-Net model .*junk.onnx"
    ):
        VocalSeparator(tmp_path / "junk.onnx", config=SMALL).load()
    with pytest.raises(ConfigError, match="batch_size"):
        VocalSeparator(tmp_path / "junk.onnx", config=SMALL, batch_size=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dim_f": 600}, "exceeds the 513 bins"),
        ({"overlap": 1.0}, r"overlap must be in \[0, 1\)"),
        ({"dim_t": 4}, "must be longer than n_fft"),
        ({"n_fft": 0}, "positive int"),
        ({"compensate": 0.0}, "positive"),
    ],
)
def test_bad_settings(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MDXConfig(**{**SMALL.__dict__, **changes})


def test_bad_audio(tmp_path: Path) -> None:
    path = build_mdx_model(tmp_path / "m.onnx", "identity", dim_f=SMALL.dim_f, dim_t=SMALL.dim_t)
    separator = VocalSeparator(path, config=SMALL)
    bad = np.zeros(5000, np.float32)
    bad[4321] = np.nan
    with pytest.raises(AudioError, match=r"NaN or infinite samples \(first at 0.098 s\)"):
        separator.separate(bad, 44100)
    with pytest.raises(AudioError, match="no samples"):
        separator.separate(np.zeros(0, np.float32), 44100)
    with pytest.raises(AudioError, match="3 dimensions"):
        separator.separate(np.zeros((2, 2, 100), np.float32), 44100)
    with pytest.raises(AudioError, match="sample_rate must be a positive int"):
        separator.separate(np.zeros(100, np.float32), 0)
    with pytest.raises(AudioError, match="does not exist"):
        separator.separate_file(tmp_path / "nope.wav", output_rate=16000)


def test_without_onnxruntime_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = hallo_folder(tmp_path)
    separator = find_separator(root, config=SMALL)  # finding needs no onnxruntime
    assert separator is not None
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(
        PluginLoadError, match=r'pip install "emo\[vocals\]".*--no-vocal-separation'
    ):
        separator.separate(np.zeros(1000, np.float32), 44100)


def test_importing_does_not_import_onnxruntime() -> None:
    code = (
        "import sys, emo, emo.audio.vocals as m\n"
        "from emo.audio.vocals import VocalSeparator, find_separator, KIM_VOCAL_2\n"
        "assert 'onnxruntime' not in sys.modules and 'onnx' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
