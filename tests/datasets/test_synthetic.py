"""Synthetic talking heads: determinism, splits, audio units, mouth truth, motion truth, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emo.audio.envelope import loudness_envelope
from emo.datasets.synthetic import (
    HAIR_STYLES,
    MOUTH_MAX_GAP,
    POSE_LIMITS,
    HeadRenderer,
    head_motion,
    make_clip,
    mouth_tracks,
    sample_identity,
    synthesize_audio,
    write_clip,
    write_dataset,
)
from emo.errors import InputError


def test_same_seeds_same_clip_other_seeds_other_clip() -> None:
    a = make_clip(3, 4, duration=1.0, size=64)
    b = make_clip(3, 4, duration=1.0, size=64)
    c = make_clip(5, 6, duration=1.0, size=64)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio.waveform, b.audio.waveform)
    assert np.abs(a.frames.astype(int) - c.frames.astype(int)).mean() > 10
    assert not np.allclose(a.audio.waveform, c.audio.waveform)


def test_held_out_identities_share_no_discrete_trait_or_colour_band_with_training() -> None:
    train = [sample_identity(i, "train") for i in range(40)]
    held = [sample_identity(i, "heldout") for i in range(40)]
    assert {t.hair_style for t in train} <= set(HAIR_STYLES["train"])
    assert {t.hair_style for t in held} <= set(HAIR_STYLES["heldout"])
    assert not {t.background for t in train} & {t.background for t in held}
    train_skins = {t.skin for t in train}
    # Nearest training skin tone is never the same colour.
    for h in held:
        gap = min(np.abs(np.subtract(h.skin, s)).max() for s in train_skins)
        assert gap > 0.005
    assert len({t.style for t in train}) == 3
    assert sample_identity(7, "train") == sample_identity(7, "train")


def test_speech_has_silences_and_loud_vowels_singing_sustains_notes() -> None:
    track = synthesize_audio(1, 4.0)
    sr = track.sample_rate
    assert track.waveform.shape == (4 * sr,)
    assert track.waveform.dtype == np.float32
    assert abs(float(np.abs(track.waveform).max()) - 0.8) < 1e-3

    def rms(unit: object) -> float:
        a, b = round(unit.start * sr) + 200, round(unit.end * sr) - 200  # type: ignore[attr-defined]
        return float(np.sqrt(np.mean(track.waveform[a:b] ** 2))) if b > a else 0.0

    silences = [rms(u) for u in track.units if u.phoneme == "_" and u.end - u.start > 0.1]
    vowels = [rms(u) for u in track.units if u.phoneme in "aeiou" and u.end - u.start > 0.1]
    assert silences and vowels
    assert max(silences) < 0.2 * np.median(vowels)
    song = synthesize_audio(1, 4.0, mode="singing")
    note = np.median([u.end - u.start for u in song.units if u.phoneme in "aeiou"])
    spoken = np.median([u.end - u.start for u in track.units if u.phoneme in "aeiou"])
    assert note > 2 * spoken


def test_mouth_truth_follows_the_units_and_the_loudness() -> None:
    track = synthesize_audio(2, 6.0)
    opening, width = mouth_tracks(track, 25, 150)
    assert opening.shape == width.shape == (150,)
    assert opening.min() >= 0.0 and opening.max() <= 1.0
    loud = loudness_envelope(track.waveform, track.sample_rate, 25, 150)
    assert np.corrcoef(opening, loud)[0, 1] > 0.6
    for unit in track.units:  # closed in the middle of every long pause
        if unit.phoneme == "_" and unit.end - unit.start > 0.3:
            mid = int((unit.start + unit.end) / 2 * 25)
            assert opening[mid] < 0.05


def test_rendered_mouth_gap_matches_the_truth() -> None:
    # In the central column, the pixels that are neither skin nor lip are the
    # mouth's inside (dark, teeth, tongue): their count is the drawn gap.
    identity = sample_identity(0, "train")
    assert identity.style == "flat"  # no shading: skin and lips have one colour each
    renderer = HeadRenderer(identity, 128)
    row = int((1 - (0.1 + identity.mouth_y * identity.head_scale)) * 64)  # the mouth line
    gaps = []
    for opening in np.linspace(0.0, 1.0, 6):
        column = renderer.render(np.zeros(3), np.zeros(2), float(opening), 0.5, 0.0)[:, 64]
        part = column[row - 8 : row + 14]
        other = [
            np.abs(part - np.array(c)).max(axis=1) > 0.08
            for c in (identity.skin, identity.lip_color)
        ]
        gaps.append(int((other[0] & other[1]).sum()))
    expected = np.linspace(0.0, 1.0, 6) * MOUTH_MAX_GAP * identity.head_scale * 64
    assert np.all(np.diff(gaps) > 0)
    # A closed mouth still shows its seam (a line about 2 px high with anti-aliasing).
    assert gaps[0] <= 3
    np.testing.assert_allclose(np.subtract(gaps, gaps[0]), expected, atol=2.0)


def test_head_moves_at_the_requested_speed_within_limits() -> None:
    for speed in (0.5, 1.0, 2.0):
        motion = head_motion(4, 200, speed)
        assert abs(float(motion.speed.mean()) - speed) < 0.1 * speed
        assert np.all(np.abs(motion.pose) <= np.array(POSE_LIMITS) + 1e-9)
    still = head_motion(4, 50, 0.0)
    assert np.ptp(still.pose, axis=0).max() == 0.0
    assert still.speed.max() == 0.0
    ramp = head_motion(4, 100, np.linspace(0.0, 2.0, 100))
    assert ramp.speed[:30].mean() < ramp.speed[-30:].mean()


def test_face_box_tracks_the_head() -> None:
    clip = make_clip(1, 1, duration=2.0, size=64, speed=2.0)
    boxes = clip.face_box
    assert boxes.shape == (clip.num_frames, 4)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    # Translation follows yaw, so the box centre moves with the pose.
    assert np.corrcoef(centre_x, clip.head_pose[:, 0])[0, 1] > 0.9


def test_written_clip_reads_back_with_audio_and_truth(tmp_path: object) -> None:
    import emo

    clip = make_clip(2, 3, duration=1.0, size=64, mode="singing")
    path = write_clip(clip, tmp_path / "clip.mp4")  # type: ignore[operator]
    frames, fps = emo.read_video(path)
    assert tuple(frames.shape) == (25, 64, 64, 3)
    assert fps == 25
    assert np.abs(frames.numpy().astype(int) - clip.frames.astype(int)).mean() < 3.0
    audio = emo.load_audio(path, sample_rate=16000)
    assert abs(audio.shape[-1] - 16000) < 1600
    truth = json.loads(path.with_suffix(".json").read_text())
    assert truth["num_frames"] == 25
    for key in ("boxes", "head_angles", "head_speed", "mouth_open", "blink", "loudness"):
        assert len(truth[key]) == 25, key
    assert truth["identity"]["seed"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.json", "clip.mp4"]


def test_write_dataset_names_and_splits(tmp_path: object) -> None:
    paths = write_dataset(tmp_path, 2, split="heldout", duration=0.4, size=48)  # type: ignore[arg-type]
    assert [p.name for p in paths] == ["heldout_00000.mp4", "heldout_00001.mp4"]
    truth = json.loads(paths[1].with_suffix(".json").read_text())
    assert truth["identity"]["split"] == "heldout"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_clip(1, 1, size=8), "size"),
        (lambda: sample_identity(-1), "seed"),
        (lambda: sample_identity(1, "test"), "split"),  # type: ignore[arg-type]
        (lambda: synthesize_audio(1, 0.0), "duration"),
        (lambda: synthesize_audio(1, 1.0, mode="rap"), "mode"),  # type: ignore[arg-type]
        (lambda: head_motion(1, 10, -1.0), "speed"),
        (lambda: write_clip(make_clip(1, 1, duration=0.2, size=32), "x.avi"), ".mp4"),
    ],
)
def test_bad_input_is_named(call: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()  # type: ignore[operator]


def test_write_dataset_in_two_processes_writes_the_same_clips(tmp_path: Path) -> None:
    import emo

    one = write_dataset(tmp_path / "one", 2, duration=0.3, size=32)
    two = write_dataset(tmp_path / "two", 2, duration=0.3, size=32, workers=2)
    for a, b in zip(one, two, strict=True):
        assert a.name == b.name
        assert a.with_suffix(".json").read_text() == b.with_suffix(".json").read_text()
        # x264 is not bit-exact across processes (its threading follows the process's
        # CPU set), so compare pictures within the codec's error, as for one clip above.
        frames_a, frames_b = emo.read_video(a)[0].numpy(), emo.read_video(b)[0].numpy()
        assert np.abs(frames_a.astype(int) - frames_b.astype(int)).mean() < 3.0
