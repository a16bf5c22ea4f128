"""Score one talking-head video: lip sync, identity, head motion, seams.

The mouth, the head pose and the face identity are measured by :mod:`emo.face`
(dlib's 68 landmarks and face descriptor; ``pip install "emo[face]"``), so any
video can be scored, generated or real; the synthetic ground truth only adds
the reference mouth signal.
"""

from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction
from typing import Any

import numpy as np

from emo._deprecation import renamed_arguments
from emo.audio.envelope import loudness_envelope
from emo.errors import InputError
from emo.evaluation.signals import LipSync, SeamJump, lip_sync, seam_jump

__all__ = [
    "VideoScore",
    "enlarge_for_analysis",
    "identity_outside_mouth",
    "mask_mouth",
    "score_video",
    "score_video_file",
]

_MOUTH = slice(48, 68)  # iBUG-68 outer and inner lip points


@dataclasses.dataclass(frozen=True)
class VideoScore:
    """Every measurement of one video (NaN or ``None`` where it does not apply).

    Attributes
    ----------
    num_frames, fps
        The video.
    face_ratio
        Fraction of frames where a face (with landmarks) was found.
    mouth_opening
        ``(f,)`` measured inner-lip gap / eye distance (NaN without a face).
    lip_sync_truth
        Against the ground-truth mouth opening, when one was given.
    lip_sync_loudness
        Against the audio's loudness per frame, when audio was given.
    identity
        Mean cosine similarity of the face descriptor (mouth masked out) to the reference's.
    appearance_psnr
        PSNR (dB) of the face outside the mouth, aligned to the reference.
    head_velocity_mean, head_velocity_var
        Head rotation speed over frames with a face, degrees per frame of this video.
    box_motion
        Mean face-box centre displacement per frame, in face widths.
    seams
        Frame-difference jump at clip seams, when the clip length was given.
    """

    num_frames: int
    fps: float
    face_ratio: float
    mouth_opening: np.ndarray
    lip_sync_truth: LipSync | None
    lip_sync_loudness: LipSync | None
    identity: float
    appearance_psnr: float
    head_velocity_mean: float
    head_velocity_var: float
    box_motion: float
    seams: SeamJump | None

    def summary(self) -> dict[str, Any]:
        """The scalar scores as a JSON-ready dict (NaN becomes ``None``)."""

        def num(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else round(float(value), 4)

        out: dict[str, Any] = {
            "num_frames": self.num_frames,
            "fps": num(self.fps),
            "face_ratio": num(self.face_ratio),
            "identity": num(self.identity),
            "appearance_psnr": num(self.appearance_psnr),
            "head_velocity_mean": num(self.head_velocity_mean),
            "head_velocity_var": num(self.head_velocity_var),
            "box_motion": num(self.box_motion),
        }
        for key, sync in (("truth", self.lip_sync_truth), ("loudness", self.lip_sync_loudness)):
            if sync is not None:
                out[f"lip_sync_{key}"] = num(sync.correlation)
                found = math.isfinite(sync.peak_correlation)
                out[f"offset_{key}"] = sync.offset if found else None
                out[f"peak_lip_sync_{key}"] = num(sync.peak_correlation)
        if self.seams is not None:
            out["seam_jump"] = num(self.seams.seam)
            out["within_clip_change"] = num(self.seams.within)
            out["seam_ratio"] = num(self.seams.ratio)
        return out


def mask_mouth(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of ``image`` ``(h, w, 3)`` with the mouth (lip hull grown by half) painted over.

    The paint is the median colour of the face's landmark box, so the descriptor
    sees a closed, skin-coloured mouth whatever the mouth did.
    """
    from emo.face.haar import import_cv2

    cv2 = import_cv2()
    out: np.ndarray = np.ascontiguousarray(image).copy()
    lips = landmarks[_MOUTH].astype(np.float64)
    centre = lips.mean(axis=0)
    grown = centre + (lips - centre) * 1.5
    hull = cv2.convexHull(np.round(grown).astype(np.int32))
    x0, y0 = np.maximum(np.floor(landmarks.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int)
    face = out[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].reshape(-1, 3)
    colour = np.median(face, axis=0) if face.size else np.array([128, 128, 128])
    cv2.fillConvexPoly(out, hull, [int(c) for c in colour])
    return out


def _face_mask(cv2: Any, shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """bool ``(h, w)``: inside the face outline (jaw and brows), outside the grown lip hull."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    outline = cv2.convexHull(np.round(landmarks[:27]).astype(np.int32))
    cv2.fillConvexPoly(mask, outline, 1)
    lips = landmarks[_MOUTH]
    centre = lips.mean(axis=0)
    cv2.fillConvexPoly(
        mask, cv2.convexHull(np.round(centre + (lips - centre) * 1.5).astype(np.int32)), 0
    )
    out: np.ndarray = mask.astype(bool)
    return out


def identity_outside_mouth(
    frames: np.ndarray, landmarks: np.ndarray, reference: np.ndarray, *, count: int = 8
) -> tuple[float, float]:
    """How well the face outside the mouth keeps the reference's identity.

    Two measures over sampled frames:

    - the mean cosine similarity of dlib's face descriptors, mouth painted out of both
      images (one person: usually above 0.97; different synthetic heads: 0.92-0.97);
    - the appearance PSNR in dB: the frame is aligned to the reference with a similarity
      transform fitted to the rigid landmarks (brows, eyes, nose), then compared inside
      the reference's face outline minus the mouth.

    Parameters
    ----------
    frames
        uint8 ``(f, h, w, 3)``.
    landmarks
        ``(f, 68, 2)`` from :class:`emo.face.FaceAnalyzer` (NaN rows: no face; skipped).
    reference
        uint8 ``(h, w, 3)`` portrait.
    count
        Frames compared, evenly spread over those with a face (about 0.15 s each).

    Returns
    -------
    tuple of float
        ``(cosine similarity, PSNR in dB)``; NaN when the reference or no frame has a face.
    """
    from emo.face import FaceAnalyzer, FaceEmbedder
    from emo.face.haar import import_cv2

    cv2 = import_cv2()
    analyzer = FaceAnalyzer()
    embedder = FaceEmbedder(analyzer)
    ref_track = analyzer.analyze(reference[None])
    if not bool(ref_track.found[0]) or not np.isfinite(ref_track.landmarks[0]).all():
        return float("nan"), float("nan")
    ref_points = ref_track.landmarks[0].astype(np.float64)
    anchor = embedder.embed_landmarks(mask_mouth(reference, ref_points), ref_points)
    region = _face_mask(cv2, reference.shape, ref_points)
    usable = np.flatnonzero(np.isfinite(landmarks).all(axis=(1, 2)))
    if usable.size == 0:
        return float("nan"), float("nan")
    picks = usable[
        np.unique(np.linspace(0, usable.size - 1, min(count, usable.size)).round().astype(int))
    ]
    sims, errors = [], []
    rigid = slice(17, 48)
    height, width = reference.shape[:2]
    for i in picks:
        points = landmarks[i].astype(np.float64)
        vector = embedder.embed_landmarks(mask_mouth(frames[i], points), points)
        sims.append(
            float(vector @ anchor / max(np.linalg.norm(vector) * np.linalg.norm(anchor), 1e-12))
        )
        matrix, _ = cv2.estimateAffinePartial2D(points[rigid], ref_points[rigid])
        if matrix is None or not region.any():
            continue
        aligned = cv2.warpAffine(
            frames[i],
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        diff = aligned[region].astype(np.float64) - reference[region].astype(np.float64)
        errors.append(float(np.mean(diff * diff)))
    psnr = (
        10.0 * math.log10(255.0**2 / max(float(np.mean(errors)), 1e-10)) if errors else float("nan")
    )
    return float(np.mean(sims)), psnr


def enlarge_for_analysis(frames: np.ndarray, analysis_size: int = 256) -> np.ndarray:
    """Enlarge small frames for the face analysis (bilinear, by a whole factor).

    dlib's landmarks need faces of about 80 px: frames whose shorter side is below
    ``analysis_size`` are enlarged by the smallest whole factor that reaches it (the
    measures of :func:`score_video` are ratios or angles, so the scale cancels out).

    Parameters
    ----------
    frames
        uint8 ``(f, h, w, 3)``.
    analysis_size
        Shorter side the frames are enlarged to at least.

    Returns
    -------
    numpy.ndarray
        uint8 ``(f, h * k, w * k, 3)`` for the factor ``k`` >= 1 (the input itself when 1).
    """
    factor = max(1, math.ceil(analysis_size / min(frames.shape[1:3])))
    if factor == 1:
        return frames
    from emo.face.haar import import_cv2

    cv2 = import_cv2()
    h, w = frames.shape[1:3]
    return np.stack(
        [cv2.resize(x, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR) for x in frames]
    )


@renamed_arguments(clip_length="frames_per_clip")
def score_video(
    frames: Any,
    fps: float | Fraction,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    truth_mouth: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    frames_per_clip: int | None = None,
    max_offset: int = 10,
    identity_frames: int = 8,
    analysis_size: int = 256,
    analyzer: Any = None,
) -> VideoScore:
    """Measure one video.

    Parameters
    ----------
    frames
        uint8 ``(f, h, w, 3)`` (or float in ``[0, 1]``), numpy or torch.
    fps
        Frame rate.
    audio, sample_rate
        ``(samples,)`` mono audio played with the video, for lip sync against its loudness.
    truth_mouth
        ``(f,)`` ground-truth mouth opening (synthetic data), for lip sync against the truth.
    reference
        uint8 ``(h, w, 3)`` portrait the video should keep the identity of.
    frames_per_clip
        Frames per generated clip, for the seam score.
    max_offset
        Largest audio-video offset searched, in frames.
    identity_frames
        Frames compared with the reference.
    analysis_size
        Frames (and the reference) whose shorter side is smaller are enlarged by a whole
        factor to at least this size before the face analysis.
    analyzer
        An :class:`emo.face.FaceAnalyzer` to reuse (default: a new one).

    Raises
    ------
    InputError
        On bad frames, a truth of another length, audio without its rate.
    PluginLoadError
        Without the face extra (``pip install "emo[face]"``).
    """
    from emo.face import FaceAnalyzer, head_speed
    from emo.io.writers.base import as_video_frames

    video = as_video_frames(frames, name="video frames")
    rate = float(fps)
    if not rate > 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    f = video.shape[0]
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    seen = enlarge_for_analysis(video, analysis_size)
    track = analyzer.analyze(seen, fps=rate)
    mouth = np.asarray(track.mouth_opening, dtype=np.float64)
    by_truth = by_loudness = None
    if truth_mouth is not None:
        truth = np.asarray(truth_mouth, dtype=np.float64)
        if truth.shape != (f,):
            raise InputError(f"truth_mouth must have one value per frame ({f},), got {truth.shape}")
        by_truth = lip_sync(mouth, truth, max_offset=max_offset)
    if audio is not None:
        if sample_rate is None:
            raise InputError("audio given without sample_rate; pass sample_rate=... (Hz)")
        loud = loudness_envelope(
            np.asarray(audio).reshape(-1),
            int(sample_rate),
            Fraction(rate).limit_denominator(1_000_000),
            f,
        )
        by_loudness = lip_sync(mouth, loud, max_offset=max_offset)
    identity = appearance = float("nan")
    if reference is not None:
        ref = as_video_frames(reference, name="reference")[0]
        ref = enlarge_for_analysis(ref[None], analysis_size)[0]
        identity, appearance = identity_outside_mouth(
            seen, track.landmarks, ref, count=identity_frames
        )
    speed = (
        head_speed(track, fps=rate, reference_fps=rate) if track.found.any() else np.full(f, np.nan)
    )
    with_face = track.found & np.isfinite(speed)
    boxes = np.asarray(track.boxes, dtype=np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    widths = boxes[:, 2] - boxes[:, 0]
    steps = (
        np.linalg.norm(np.diff(centres, axis=0), axis=1) / np.nanmean(widths)
        if f > 1 and np.isfinite(widths).any()
        else np.array([np.nan])
    )
    steps = steps[np.isfinite(steps)]
    seams = seam_jump(video, frames_per_clip) if frames_per_clip is not None and f > 1 else None
    return VideoScore(
        num_frames=f,
        fps=rate,
        face_ratio=float(np.mean(track.found & np.isfinite(mouth))),
        mouth_opening=mouth,
        lip_sync_truth=by_truth,
        lip_sync_loudness=by_loudness,
        identity=identity,
        appearance_psnr=appearance,
        head_velocity_mean=float(speed[with_face].mean()) if with_face.any() else float("nan"),
        head_velocity_var=float(speed[with_face].var()) if with_face.any() else float("nan"),
        box_motion=float(steps.mean()) if steps.size else float("nan"),
        seams=seams,
    )


@renamed_arguments(clip_length="frames_per_clip")
def score_video_file(
    path: str | os.PathLike[str],
    *,
    reference: Any = None,
    truth: str | os.PathLike[str] | np.ndarray | None = None,
    frames_per_clip: int | None = None,
    max_offset: int = 10,
    analyzer: Any = None,
) -> VideoScore:
    """Score a video file against its own audio track (and optional truth, reference).

    Parameters
    ----------
    path
        Any video PyAV reads, with an audio track for the loudness lip sync.
    reference
        Portrait (path or uint8 array); default: none (no identity score).
    truth
        ``(f,)`` truth mouth opening, or the path of a synthetic ``.json`` sidecar
        (its ``mouth_open``); default: the sidecar next to the video when there is one.
    frames_per_clip, max_offset, analyzer
        As for :func:`score_video`.
    """
    import json

    from emo.audio.loading import load_audio
    from emo.errors import AudioError
    from emo.io.image import load_image
    from emo.io.reader import read_video

    frames, fps = read_video(path)
    try:
        waveform = load_audio(path, sample_rate=16000).numpy().reshape(-1)
    except AudioError:
        waveform = None
    truth_mouth: np.ndarray | None = None
    sidecar = os.path.splitext(os.fspath(path))[0] + ".json"
    if truth is None and os.path.exists(sidecar):
        truth = sidecar
    if isinstance(truth, (str, os.PathLike)):
        with open(truth, encoding="utf-8") as handle:
            truth_mouth = np.asarray(json.load(handle)["mouth_open"], dtype=np.float64)
    elif truth is not None:
        truth_mouth = np.asarray(truth, dtype=np.float64)
    if truth_mouth is not None and truth_mouth.shape[0] != frames.shape[0]:
        raise InputError(
            f"the truth has {truth_mouth.shape[0]} frames but {os.fspath(path)!r} has {frames.shape[0]}"
        )
    portrait = load_image(reference) if reference is not None else None
    return score_video(
        frames,
        fps,
        audio=waveform,
        sample_rate=16000 if waveform is not None else None,
        truth_mouth=truth_mouth,
        reference=portrait,
        frames_per_clip=frames_per_clip,
        max_offset=max_offset,
        analyzer=analyzer,
    )
