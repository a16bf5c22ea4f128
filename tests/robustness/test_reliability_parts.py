"""The parts behind the fault handling: output claims, limits, image headers, signals, test isolation."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from emo.errors import (
    AudioError,
    AudioTooLongError,
    ConfigError,
    ImageError,
    InputTooLargeError,
    OutputInUseError,
    Terminated,
)
from emo.interrupts import exit_code_for, stop_on_signals
from emo.io.claim import OutputClaim, is_own_temporary, make_temporary
from emo.io.image import load_image
from emo.io.image_header import image_dimensions
from emo.limits import current_limits, limits_changed, set_limits
from emo.pipelines.input_checks import check_generation_inputs

ROOT = Path(__file__).resolve().parents[2]


# -- output claims -------------------------------------------------------------------------
def test_claim_is_exclusive_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with OutputClaim(target) as claim:
        assert claim.held and claim.lock_path.read_text().strip() == str(os.getpid())
        with pytest.raises(OutputInUseError, match=f"process {os.getpid()}"):
            OutputClaim(target).acquire()
        OutputClaim(tmp_path / "other.mp4").acquire().release()  # other paths are free
    assert not claim.held and os.listdir(tmp_path) == []
    OutputClaim(target).acquire().release()  # free again


def test_claim_removes_only_its_targets_own_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"keep")
    stale = [make_temporary(target), make_temporary(target, "folder")]
    (stale[1] / "frame_000000.png").write_bytes(b"x")
    foreign = [
        ".out.mp4.emo-12345678.partial",  # not the pattern
        ".out.mp4.emo-xyz.part",  # not emo's random part
        ".out.mp4.1a2b3c4d.part",  # no marker
        ".other.mp4.emo-1a2b3c4d.part",  # another target's
        "out.mp4.emo-1a2b3c4d.part",  # not hidden
    ]
    for name in foreign:
        (tmp_path / name).write_text("not emo's")
    (tmp_path / ".out.mp4.emo-lock").write_text("99999999\n")  # a killed run's lock
    with OutputClaim(target) as claim:
        assert sorted(claim.removed) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted([*foreign, "out.mp4"])
    assert target.read_bytes() == b"keep"
    assert all(not is_own_temporary(target, name) for name in foreign)


def test_claim_restores_a_folder_a_killed_swap_moved_aside(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    old = make_temporary(target, "old")
    old.mkdir()
    (old / "frame_000000.png").write_bytes(b"the only copy")
    with OutputClaim(target):
        pass
    assert (target / "frame_000000.png").read_bytes() == b"the only copy"
    assert os.listdir(tmp_path) == ["frames"]


def test_temporaries_get_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    temp = make_temporary(tmp_path / "out.mp4")
    assert temp.stat().st_mode & 0o777 == 0o666 & ~umask


# -- limits --------------------------------------------------------------------------------
def test_limits_from_env_and_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert current_limits().max_audio_seconds == 4 * 3600
    monkeypatch.setenv("EMO_MAX_AUDIO_SECONDS", "7200.5")
    monkeypatch.setenv("EMO_MAX_IMAGE_PIXELS", "0")
    assert current_limits().max_audio_seconds == 7200.5
    assert current_limits().max_image_pixels is None
    with limits_changed(max_audio_seconds=10) as inside:
        assert inside.max_audio_seconds == 10  # Python wins over the environment
    assert current_limits().max_audio_seconds == 7200.5
    monkeypatch.setenv("EMO_MAX_FRAME_PIXELS", "lots")
    with pytest.raises(ConfigError, match="EMO_MAX_FRAME_PIXELS"):
        current_limits()
    with pytest.raises(ConfigError, match="unknown limit"):
        set_limits(max_video_hours=3)
    with pytest.raises(ConfigError, match="non-negative"):
        set_limits(max_image_pixels=-1)


def test_two_hour_audio_is_sensible_and_longer_arrays_are_refused(tmp_path: Path) -> None:
    rate = 8000
    two_hours = np.zeros(2 * 3600 * rate, dtype=np.int8)  # 58 MB of shape, checked by shape
    check_generation_inputs("x.png", two_hours, width=512, height=512, audio_rate=rate)
    with limits_changed(max_audio_seconds=3600), pytest.raises(AudioTooLongError) as info:
        check_generation_inputs("x.png", two_hours, width=512, height=512, audio_rate=rate)
    assert isinstance(info.value, AudioError) and isinstance(info.value, InputTooLargeError)
    assert "2:00:00" in str(info.value) and "1:00:00" in str(info.value)


def test_image_arrays_are_checked_too() -> None:
    with limits_changed(max_image_pixels=100), pytest.raises(ImageError, match="10x11"):
        load_image(np.zeros((11, 10, 3), dtype=np.uint8))


# -- image headers -------------------------------------------------------------------------
@pytest.mark.parametrize(("codec", "fmt"), [("png", "rgb24"), ("mjpeg", "yuvj420p"),
                                            ("bmp", "bgr24"),
                                            ("libwebp", "yuv420p")])  # fmt: skip
def test_header_sizes_match_the_decoded_image(codec: str, fmt: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg has no {codec} encoder here")
    width, height = 37, 23
    buffer = io.BytesIO()
    container_format = {"mjpeg": "mjpeg", "libwebp": "webp"}.get(codec, "image2pipe")
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, fmt
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), "rgb24")
        for packet in stream.encode(frame.reformat(format=fmt)):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = buffer.getvalue()
    assert image_dimensions(data) == (width, height)
    assert load_image(data).shape == (height, width, 3)


def test_unknown_headers_give_none(tmp_path: Path) -> None:
    assert image_dimensions(b"not an image at all, long enough to be read") is None
    assert image_dimensions(tmp_path / "missing.png") is None
    assert image_dimensions(b"\xff\xd8\xff\xda\x00\x02") is None  # data before any frame


# -- signals -------------------------------------------------------------------------------
def test_sigterm_becomes_terminated_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000_000):  # the handler runs at the next instruction
            pass
    assert info.value.signum == signal.SIGTERM and info.value.signal_name == "SIGTERM"
    assert isinstance(info.value, KeyboardInterrupt)
    assert exit_code_for(signal.SIGTERM) == 143 and exit_code_for(signal.SIGHUP) == 129
    assert signal.getsignal(signal.SIGTERM) == before


# -- tests do not depend on installed plugins -----------------------------------------------
def test_plugin_tests_pass_with_broken_third_party_plugins_installed() -> None:
    """The registry tests that list every plugin, run with broken plugins on the path."""
    env = dict(os.environ)
    env.pop("EMO_DISABLE_PLUGINS", None)
    dists = ROOT / "tests" / "fixtures" / "plugin_dists"
    env["PYTHONPATH"] = os.pathsep.join([str(dists), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/core/test_core_plugins.py::test_builtins_are_listed_from_metadata_without_import",
            "tests/io/test_io_writers.py::test_writer_for_path_and_registry",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 passed" in result.stdout


def test_failure_modes_page_lists_every_error_class() -> None:
    import emo.errors

    page = (ROOT / "docs" / "guide" / "failure_modes.md").read_text()
    missing = [name for name in emo.errors.__all__ if f"emo.errors.{name}`" not in page]
    assert not missing, f"add these error classes to docs/guide/failure_modes.md: {missing}"


def test_long_audio_is_file_backed_and_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import soundfile as sf
    import torch

    import emo.audio.loading as loading

    path = tmp_path / "speech.wav"
    rng = np.random.default_rng(0)
    sf.write(str(path), rng.uniform(-0.5, 0.5, 48_000).astype(np.float32), 16_000)
    in_memory = loading.load_audio(path, sample_rate=16_000)
    monkeypatch.setattr(loading, "_FILE_BACKED_BYTES", 4096)
    mapped = loading.load_audio(path, sample_rate=16_000)
    resampled = loading.load_audio(path, sample_rate=22_050)
    monkeypatch.undo()
    assert torch.equal(mapped, in_memory)
    assert torch.equal(resampled, loading.load_audio(path, sample_rate=22_050))
    # The samples live in a mapping of a deleted (nameless) file, not in anonymous memory.
    address = mapped.untyped_storage().data_ptr()
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps to inspect the mapping")
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)
        low, high = (int(x, 16) for x in fields[0].split("-"))
        if low <= address < high:
            assert len(fields) == 6 and "(deleted)" in fields[5], line
            break
    else:
        raise AssertionError("the waveform's address is in no mapping")


def test_model_saves_are_claimed_and_clean_up_after_killed_saves(tmp_path: Path) -> None:
    import torch

    from emo.models.face_locator import FaceLocator

    model = FaceLocator(in_channels=1, out_channels=4, block_out_channels=(4, 8))
    target = tmp_path / "model.safetensors"
    killed = make_temporary(target)  # what a save killed mid-write leaves
    killed.write_bytes(b"\0" * 1000)
    stranger = tmp_path / ".weights.1234.tmp"
    stranger.write_bytes(b"not emo's pattern")
    with OutputClaim(target), pytest.raises(OutputInUseError, match="model.safetensors"):
        model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["config.json", "model.safetensors", stranger.name]
    )
    again = FaceLocator.from_pretrained(tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value), name


def test_pipeline_save_restores_a_folder_a_killed_swap_moved_aside(tmp_path: Path) -> None:
    from emo.pipelines.emo_pipeline import EMOPipeline

    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full")
    target = tmp_path / "model"
    pipe.save_pretrained(target)
    index = (target / "model_index.json").read_text()
    aside = make_temporary(target, "old")
    target.rename(aside)  # a save killed between its two renames
    staging = make_temporary(target, "folder")
    with OutputClaim(target):  # what the next save (or generation) does first
        pass
    assert (target / "model_index.json").read_text() == index
    assert not staging.exists() and os.listdir(tmp_path) == ["model"]
    pipe.save_pretrained(target)
    assert EMOPipeline.from_pretrained(target).settings == pipe.settings
    assert os.listdir(tmp_path) == ["model"]
