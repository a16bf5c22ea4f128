"""`emo face` on a real PNG and MP4, and the video measurements (head velocity, boxes, identity)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from face_drawing import astronaut, cartoon_face, turn

from emo.cli import main
from emo.errors import InputError
from emo.face import FaceAnalyzer, FaceEmbedder, measure_video
from emo.face.metrics import box_iou, box_jitter
from emo.io.writers.pyav import MP4Writer


@pytest.fixture(scope="module")
def turning_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The astronaut turning 1 degree per frame for 12 frames at 25 fps, as MP4 and as frames."""
    frames = np.stack([turn(astronaut(), i * 1.0) for i in range(12)])
    path = tmp_path_factory.mktemp("face") / "turning.mp4"
    MP4Writer().write(frames, path, fps=25)
    return path, frames


def test_cli_prints_a_table_for_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut()[:, :, ::-1])
    assert main(["face", str(path)]) == 0
    out = capsys.readouterr().out
    assert "astronaut.png: 1 frame(s), 512x512, backend dlib" in out
    row = out.strip().splitlines()[-1].split()
    assert row[0] == "0" and len(row[1].split(",")) == 4
    assert abs(float(row[4])) < 6  # roll of the upright photo


def test_cli_json_for_a_video(
    turning_clip: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = turning_clip
    assert main(["face", str(path), "--json", "--max-frames", "5", "--landmarks"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["fps"] == 25.0 and len(record["frames"]) == 5
    rolls = [frame["roll"] for frame in record["frames"]]
    assert all(frame["found"] for frame in record["frames"])
    assert rolls[4] - rolls[0] == pytest.approx(4.0, abs=2.0)
    assert len(record["frames"][0]["landmarks"]) == 68


def test_cli_no_face_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    path = tmp_path / "black.png"
    cv2.imwrite(str(path), np.zeros((64, 64, 3), np.uint8))
    assert main(["face", str(path)]) == 1
    captured = capsys.readouterr()
    assert "no face" in captured.out and "no face found" in captured.err
    assert main(["face", str(tmp_path / "missing.mp4")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_measure_video_from_file_and_frames(
    turning_clip: tuple[Path, np.ndarray], analyzer: FaceAnalyzer
) -> None:
    path, frames = turning_clip
    report = measure_video(path, reference=astronaut(), analyzer=analyzer, identity_frames=3)
    assert report.face_ratio == 1.0 and report.mouth_opening.shape == (12,)
    # 1 degree per frame at 25 fps is 25/30 degrees per frame at the 30 fps reference.
    assert report.head_velocity_mean == pytest.approx(25 / 30, abs=0.25)
    assert report.head_velocity_var < 0.1
    assert 0.8 < report.box_iou <= 1.0
    # Same person: dlib's distance rule (< 0.6) holds and the vectors point the same way.
    assert report.identity_distance is not None and report.identity_distance < 0.45
    assert report.identity_similarity is not None and report.identity_similarity > 0.9
    summary = report.summary()
    assert json.loads(json.dumps(summary))["frames"] == 12
    from_frames = measure_video(frames, fps=25, analyzer=analyzer)
    assert from_frames.identity_similarity is None
    assert from_frames.head_velocity_mean == pytest.approx(report.head_velocity_mean, abs=0.2)
    with pytest.raises(InputError, match="fps"):
        measure_video(frames, analyzer=analyzer)


def test_identity_tells_a_drawn_face_from_the_astronaut(analyzer: FaceAnalyzer) -> None:
    embedder = FaceEmbedder(analyzer)
    photo = embedder.embed_one(astronaut())
    mirrored = embedder.embed_one(np.ascontiguousarray(astronaut()[:, ::-1]))
    drawn = embedder.embed_one(cartoon_face())
    assert photo.shape == (128,)
    assert np.linalg.norm(photo - mirrored) < 0.4
    assert np.linalg.norm(photo - drawn) > 0.6  # dlib's same-person threshold


def test_box_stability_numbers() -> None:
    still = np.tile([10.0, 10.0, 110.0, 110.0], (5, 1))
    assert box_iou(still[:-1], still[1:]).tolist() == [1.0] * 4
    assert box_jitter(still) == 0.0
    steady = still + np.arange(5)[:, None] * 4.0  # constant motion: no jitter
    assert box_jitter(steady) == pytest.approx(0.0, abs=1e-12)
    flicker = still + (np.arange(5) % 2)[:, None] * 10.0  # jumps 10 px back and forth
    assert box_jitter(flicker) == pytest.approx(np.hypot(20, 20) / 100)
    assert box_iou(np.array([0.0, 0, 10, 10]), np.array([5.0, 0, 15, 10])) == pytest.approx(1 / 3)


def test_analyze_video_in_batches_matches_the_decoded_frames(
    turning_clip: tuple[Path, np.ndarray], analyzer: FaceAnalyzer, tmp_path: Path
) -> None:
    from emo.errors import VideoError
    from emo.io.reader import read_video

    path, _ = turning_clip
    track = analyzer.analyze_video(path, batch_size=5)
    assert len(track) == 12 and track.fps == 25.0 and track.found.all()
    frames, _ = read_video(path)
    whole = analyzer.analyze(frames.numpy())
    np.testing.assert_allclose(track.boxes, whole.boxes, atol=1e-3)
    assert len(analyzer.analyze_video(path, max_frames=3)) == 3
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    with pytest.raises(VideoError):
        analyzer.analyze_video(not_video)
    with pytest.raises(InputError, match="batch_size"):
        analyzer.analyze_video(path, batch_size=0)
