"""Procedural talking heads with ground truth: audio, frames, pose, speed, mouth.

A clip is a synthetic head (:func:`sample_identity`) saying or singing a
synthetic track (:func:`synthesize_audio`): its mouth follows the track's
units (visemes) and loudness, it blinks, and it turns at a requested speed in
degrees per frame. :func:`make_clip` renders it in memory with the truth per
frame; :func:`write_clip` / :func:`write_dataset` write MP4 files (audio muxed)
plus a ``.json`` sidecar: the folder layout ``emo prepare`` reads.

Only numpy is needed to render; PyAV is imported when a file is written.
:func:`voice_track` makes tracks with real speech engines (espeak-ng, festival: needed
only to make training data) and :func:`voice_split` says which voices are held out.
"""

from __future__ import annotations

from emo.datasets.synthetic.augment import AugmentSettings, augment_audio
from emo.datasets.synthetic.clip import FORMAT, SyntheticClip, make_clip, write_clip, write_dataset
from emo.datasets.synthetic.crop import crop_to_face, face_crop_box
from emo.datasets.synthetic.identity import HAIR_STYLES, STYLES, Identity, sample_identity
from emo.datasets.synthetic.motion import POSE_LIMITS, HeadMotion, blinks, head_motion, head_offset
from emo.datasets.synthetic.render import MOUTH_MAX_GAP, HeadRenderer
from emo.datasets.synthetic.speech import PHONEMES, AudioTrack, Unit, mouth_tracks, synthesize_audio
from emo.datasets.synthetic.voice_track import voice_track
from emo.datasets.synthetic.voices import Voice, voice_catalogue, voice_split

__all__ = [
    "FORMAT",
    "HAIR_STYLES",
    "MOUTH_MAX_GAP",
    "PHONEMES",
    "POSE_LIMITS",
    "STYLES",
    "AudioTrack",
    "AugmentSettings",
    "HeadMotion",
    "HeadRenderer",
    "Identity",
    "SyntheticClip",
    "Unit",
    "Voice",
    "augment_audio",
    "blinks",
    "crop_to_face",
    "face_crop_box",
    "head_motion",
    "head_offset",
    "make_clip",
    "mouth_tracks",
    "sample_identity",
    "synthesize_audio",
    "voice_catalogue",
    "voice_split",
    "voice_track",
    "write_clip",
    "write_dataset",
]
