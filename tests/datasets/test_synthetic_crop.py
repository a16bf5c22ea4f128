"""Synthetic clips cropped around the face (what the demo model trains and is scored on)."""

from __future__ import annotations

import numpy as np
import pytest

from emo.datasets.synthetic import crop_to_face, face_crop_box, make_clip
from emo.errors import InputError


def test_crop_to_face_fills_the_frame_and_keeps_the_truth() -> None:
    clip = make_clip(3, 11, duration=0.4, size=96, speed=2.0)
    cropped = crop_to_face(clip, 64, grow=1.3)
    assert cropped.frames.shape == (clip.num_frames, 64, 64, 3)
    assert cropped.frames.dtype == np.uint8
    np.testing.assert_array_equal(cropped.face_box, np.tile([0.0, 0.0, 64.0, 64.0], (10, 1)))
    np.testing.assert_array_equal(cropped.mouth_open, clip.mouth_open)
    np.testing.assert_array_equal(cropped.head_pose, clip.head_pose)
    x0, y0, x1, y1 = face_crop_box(clip, 1.3)
    assert x1 - x0 == pytest.approx(y1 - y0)  # square
    union = clip.face_box[:, 2].max() - clip.face_box[:, 0].min()
    assert x1 - x0 >= union  # the whole head path stays inside
    assert x0 >= 0 and y0 >= 0 and x1 <= 96 and y1 <= 96
    # The crop is the frame's content, not a blank: it matches a direct crop of frame 0.
    from emo.io.image import crop_and_resize

    np.testing.assert_array_equal(
        cropped.frames[0], crop_and_resize(clip.frames[0], (x0, y0, x1, y1), 64, 64)
    )


def test_crop_to_face_refuses_bad_arguments() -> None:
    clip = make_clip(3, 11, duration=0.2, size=64)
    with pytest.raises(InputError, match="resolution"):
        crop_to_face(clip, 4)
    with pytest.raises(InputError, match="grow"):
        crop_to_face(clip, 32, grow=0.0)
