"""Procedural talking heads with ground truth: audio, frames, pose, speed, mouth.

A clip is a synthetic head (:func:`sample_identity`) saying or singing a
synthetic track (:func:`synthesize_audio`): its mouth follows the track's
units (visemes) and loudness, it blinks, and it turns at a requested speed in
degrees per frame. :func:`make_clip` renders it in memory with the truth per
frame; :func:`write_clip` / :func:`write_dataset` write MP4 files (audio muxed)
plus a ``.json`` sidecar: the folder layout ``emo prepare`` reads.

Only numpy is needed to render; PyAV is imported when a file is written.
"""

from __future__ import annotations

from emo.datasets.synthetic.clip import FORMAT, SyntheticClip, make_clip, write_clip, write_dataset
from emo.datasets.synthetic.crop import crop_to_face, face_crop_box
from emo.datasets.synthetic.identity import HAIR_STYLES, STYLES, Identity, sample_identity
from emo.datasets.synthetic.motion import POSE_LIMITS, HeadMotion, blinks, head_motion, head_offset
from emo.datasets.synthetic.render import MOUTH_MAX_GAP, HeadRenderer
from emo.datasets.synthetic.speech import PHONEMES, AudioTrack, Unit, mouth_tracks, synthesize_audio

__all__ = [
    "FORMAT",
    "HAIR_STYLES",
    "MOUTH_MAX_GAP",
    "PHONEMES",
    "POSE_LIMITS",
    "STYLES",
    "AudioTrack",
    "HeadMotion",
    "HeadRenderer",
    "Identity",
    "SyntheticClip",
    "Unit",
    "blinks",
    "crop_to_face",
    "face_crop_box",
    "head_motion",
    "head_offset",
    "make_clip",
    "mouth_tracks",
    "sample_identity",
    "synthesize_audio",
    "write_clip",
    "write_dataset",
]
