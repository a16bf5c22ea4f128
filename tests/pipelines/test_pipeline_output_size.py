"""``output_size``: frames upscaled before the watermark, so the mark survives a re-encode."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import emo
from emo.cli import main
from emo.errors import ConfigError, InputError, InputTooLargeError
from emo.limits import limits_changed
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.output_size import written_frame_size
from emo.pipelines.settings import PipelineSettings
from emo.provenance.attacks import reencode_h264_file


def _frames(pipe: EMOPipeline, portrait: Path, audio: np.ndarray, **options: object) -> np.ndarray:
    out = pipe(
        portrait,
        audio,
        audio_rate=16000,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **options,
    )
    return np.asarray(out.frames)


def test_upscaled_output_keeps_the_mark_through_h264_crf_28(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    # 32-pixel frames written at 256: the mark is embedded at that size and found after
    # CRF 28 (16 frames of random weights' noise; the payload is read from longer videos
    # of a trained model, see benchmarks/watermark_robustness.py --model).
    out = tiny_pipe(
        portrait_path,
        short_speech,
        audio_rate=16000,
        generator=torch.Generator().manual_seed(0),
        output_path=tmp_path / "big.mp4",
        output_size=256,
    )
    with av.open(str(out.path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (256, 256)
    written = emo.detect(out.path)
    assert written.watermarked and written.payload is not None

    reencode_h264_file(out.path, tmp_path / "crf28.mp4", crf=28)
    found = emo.detect(tmp_path / "crf28.mp4")
    assert found.label == {}  # the re-encode dropped the label: only the pixels speak
    assert found.watermarked and found.verdict == "synthetic"
    assert found.payload in (None, written.payload)


def test_frames_have_the_requested_size_and_aspect(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    native = _frames(tiny_pipe, portrait_path, short_speech)
    assert native.shape[1:] == (32, 32, 3)
    assert _frames(tiny_pipe, portrait_path, short_speech, output_size=48).shape == (
        native.shape[0],
        48,
        48,
        3,
    )
    # The shorter side gets the size, the longer keeps the aspect.
    wide = _frames(tiny_pipe, portrait_path, short_speech, width=64, output_size=48)
    assert wide.shape[1:] == (48, 96, 3)
    # Asking for the generated size resizes nothing (unmarked: the setting is part of the
    # video id the mark carries).
    plain = _frames(tiny_pipe, portrait_path, short_speech, watermark=False)
    same = _frames(tiny_pipe, portrait_path, short_speech, output_size=32, watermark=False)
    assert np.array_equal(same, plain)


def test_saved_default_applies_and_native_overrides_it(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    pipe = EMOPipeline(**tiny_pipe.components)
    pipe.settings = tiny_pipe.settings.replace(output_size=40)
    pipe.set_progress_bar_config(disable=True)
    assert _frames(pipe, portrait_path, short_speech).shape[1:3] == (40, 40)
    assert _frames(pipe, portrait_path, short_speech, output_size="native").shape[1:3] == (32, 32)

    pipe.save_pretrained(tmp_path / "model")
    assert EMOPipeline.from_pretrained(tmp_path / "model").settings.output_size == 40


def test_a_folder_saved_without_the_setting_writes_the_generated_size() -> None:
    # model_index.json of an emo from before output_size: the generated size, as then.
    old = PipelineSettings().to_dict()
    del old["output_size"]
    assert PipelineSettings.from_dict(old).output_size is None
    assert written_frame_size(64, 64, None) == (64, 64)


@pytest.mark.parametrize("bad", [0, -8, 2.5, True, "big", "256"])
def test_bad_output_sizes_are_input_errors(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, bad: object
) -> None:
    with pytest.raises(InputError, match="output_size"):
        _frames(tiny_pipe, portrait_path, short_speech, output_size=bad)


def test_bad_output_size_settings_are_config_errors() -> None:
    for bad in (0, -1, 1.5, True, "256"):
        with pytest.raises(ConfigError, match="output_size"):
            PipelineSettings(output_size=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="output_size"):
        written_frame_size(32, 32, 0)


def test_an_output_size_beyond_the_frame_limit_is_refused_first(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    with (
        limits_changed(max_frame_pixels=100 * 100),
        pytest.raises(InputTooLargeError, match="output_size"),
    ):
        _frames(tiny_pipe, portrait_path, short_speech, output_size=128)


@pytest.mark.parametrize("bad", ["0", "-4", "abc", "2.5"])
def test_cli_rejects_bad_output_sizes_before_loading(
    portrait_path: Path,
    speech_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bad: str,
) -> None:
    args = [str(portrait_path), str(speech_path), "-o", str(tmp_path / "x.mp4")]
    assert main(["generate", *args, "--output-size", bad]) == 1
    assert "--output-size" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
