"""emo prepare: clips, crops, boxes, speed, audio features, latents; skips with reasons; resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emo.errors import ConfigError, InputError
from emo.training.data_format import read_clip_index, read_dataset_info
from emo.training.prepare import PrepareSettings, find_videos, prepare_dataset
from emo.training.scenes import clip_spans, scene_cuts, thumbnail


def test_every_good_video_becomes_clips_and_every_bad_one_is_skipped_with_its_reason(
    prepared: Path,
) -> None:
    clips = read_clip_index(prepared)
    sources = sorted({Path(c["source"]).name for c in clips})
    assert sources == ["talk0.mp4", "talk1.mp4", "talk2.mp4", "talk3.mp4"]
    assert len(clips) == 8  # 2 s videos, clips of at most 1 s
    assert all(c["frames"] == 10 for c in clips)  # 1 s at 10 fps
    reasons = {
        Path(json.loads(line)["item"]).name: json.loads(line)["reason"]
        for line in (prepared / "skipped.jsonl").read_text().splitlines()
    }
    assert reasons["bad_mute.mp4"] == "no audio track"
    assert reasons["bad_silent.mp4"] == "silent audio"
    assert reasons["bad_faceless.mp4"].startswith("no face")
    assert reasons["bad_broken.mp4"].startswith("VideoError")


def test_a_clip_holds_crops_boxes_speed_audio_features_and_latents(prepared: Path) -> None:
    from emo.models.vae import AutoencoderKL

    info = read_dataset_info(prepared)
    assert info["fps"] == 10.0 and info["resolution"] == 32
    assert info["audio_encoder"]["name"] == "mel"
    clip = next(c for c in read_clip_index(prepared) if c["id"].startswith("talk0"))
    tensors = load_file(prepared / "clips" / f"{clip['id']}.safetensors")
    assert tensors["frames"].shape == (10, 32, 32, 3) and tensors["frames"].dtype == torch.uint8
    assert tensors["audio_features"].shape == (10, 1, 80)
    assert tensors["audio"].shape == (16000,)  # 1 s at the encoder's rate
    assert tensors["latents"].shape == (10, 4, 4, 4)
    # The crop is 2x the face box, centred on it: the box fills the middle half.
    boxes = tensors["boxes"]
    width = boxes[:, 2] - boxes[:, 0]
    assert torch.all((width > 9) & (width < 14))
    # The face (bright) lies inside its box in the crop.
    frame, box = tensors["frames"][0].float().mean(-1), boxes[0]
    _, xs = torch.nonzero(frame > 180, as_tuple=True)
    assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
    # Head speed from the ground-truth yaw: 8 sin(2 pi 0.7 t) degrees -> up to ~3.5 deg/frame at 10 fps.
    speed = tensors["speed"]
    assert speed.shape == (10,) and 1.0 < float(speed.max()) < 4.0
    # Latents are the VAE's (mode x scaling factor) of the crops.
    vae = AutoencoderKL.from_pretrained(Path(info["settings"]["vae"]))
    pixels = tensors["frames"][:2].permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        expected = vae.encode(pixels).mode() * 0.18215
    torch.testing.assert_close(tensors["latents"][:2], expected, atol=1e-5, rtol=1e-4)


def test_ground_truth_angles_give_speed_and_without_a_pose_estimator_there_is_none(
    prepared: Path,
) -> None:
    import importlib.util

    flags = {c["id"][:5]: c["has_speed"] for c in read_clip_index(prepared)}
    assert flags["talk0"] and flags["talk1"]  # sidecar angles
    if importlib.util.find_spec("emo.face") is None:
        assert not flags["talk2"]  # no sidecar and no emo.face pose estimator


def test_a_second_run_resumes_and_a_lost_video_is_done_again(
    video_dir: Path, bright_mask: str, tmp_path: Path
) -> None:
    settings = PrepareSettings(
        fps=10.0, resolution=32, min_seconds=0.8, max_seconds=1.0, face_mask=bright_mask
    )
    first = prepare_dataset(video_dir, tmp_path, settings, progress=False)
    assert (first.videos_done, first.videos_resumed, first.clips) == (8, 0, 8)
    progress = sorted((tmp_path / "progress").glob("talk2-*.json"))[0]
    progress.unlink()
    again = prepare_dataset(video_dir, tmp_path, settings, progress=False)
    assert (again.videos_done, again.videos_resumed, again.clips) == (1, 7, 8)
    with pytest.raises(InputError, match="other settings"):
        prepare_dataset(
            video_dir, tmp_path, PrepareSettings(fps=12.0, resolution=32), progress=False
        )


def test_two_worker_processes_give_the_same_clips(video_dir: Path, tmp_path: Path) -> None:
    settings = PrepareSettings(
        fps=10.0, resolution=32, min_seconds=0.8, max_seconds=1.0, face_mask="full"
    )
    manifest = tmp_path / "videos.txt"
    manifest.write_text(f"# two videos\n{video_dir / 'talk0.mp4'}\n{video_dir / 'talk2.mp4'}\n")
    one = prepare_dataset(manifest, tmp_path / "one", settings, progress=False)
    two = prepare_dataset(manifest, tmp_path / "two", settings, workers=2, progress=False)
    assert one.clips == two.clips == 4
    for row in read_clip_index(tmp_path / "one"):
        a = load_file(tmp_path / "one" / "clips" / f"{row['id']}.safetensors")
        b = load_file(tmp_path / "two" / "clips" / f"{row['id']}.safetensors")
        assert torch.equal(a["frames"], b["frames"])
        assert torch.equal(a["audio_features"], b["audio_features"])


def test_scene_cuts_split_shots_and_clip_spans_respect_the_length_bounds() -> None:
    frames = torch.zeros(60, 16, 16, 3, dtype=torch.uint8)
    frames[:, :, :8] = 40
    frames[25:] = 200  # a hard cut at frame 25
    frames[::2, 0, 0] = 60  # small flicker is no cut
    assert scene_cuts(thumbnail(frames)) == [25]
    spans = clip_spans(60, 10.0, [25], min_seconds=1.0, max_seconds=2.0)
    assert spans == [(0, 12), (12, 25), (25, 42), (42, 60)]
    assert clip_spans(60, 10.0, [5], min_seconds=1.0, max_seconds=12.0) == [(5, 60)]


def test_bad_sources_and_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        find_videos(tmp_path / "missing")
    with pytest.raises(InputError, match="no videos"):
        find_videos(tmp_path)
    with pytest.raises(ConfigError, match="multiple of 8"):
        PrepareSettings(resolution=30)
    with pytest.raises(ConfigError, match="max_seconds"):
        PrepareSettings(min_seconds=5.0, max_seconds=4.0)
