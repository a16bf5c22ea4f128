"""Face analysis of images and clips: boxes, 68 landmarks, head pose and mouth opening.

The default backend runs dlib's trained models (the ``face`` extra, see
:mod:`emo.face._models`); without dlib, OpenCV's Haar cascade gives boxes only.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from emo.errors import EMOWarning, FaceNotFoundError, InputError, PluginLoadError, VideoError
from emo.face import _models
from emo.face._frames import as_rgb_frames
from emo.face.haar import HaarDetector, import_cv2
from emo.face.landmarks import NUM_LANDMARKS, mouth_opening
from emo.face.pose import solve_pose
from emo.face.result import FaceTrack

__all__ = ["BACKENDS", "FaceAnalyzer", "available_backend"]

BACKENDS = ("auto", "dlib", "haar")
# Rotations tried, in this order, when the upright frame has no face: the HOG detector
# finds faces tilted up to about 35 degrees, so these cover every in-plane angle.
_SEARCH_ANGLES = (45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0)
# Detections scoring this far (SVM margin) below the frame's best one are dropped.
_SCORE_MARGIN = 0.6
# A frame whose pixel values span less than this is blank (black, white, one colour).
_BLANK_RANGE = 8


def available_backend() -> str:
    """``"dlib"`` when dlib and its models are installed, else ``"haar"`` (OpenCV only).

    Raises
    ------
    PluginLoadError
        If neither dlib nor OpenCV is installed.
    """
    try:
        _models.import_dlib()
        _models.model_dir()
        return "dlib"
    except PluginLoadError:
        import_cv2()
        return "haar"


@dataclass
class _Face:
    box: np.ndarray  # (4,) in frame pixels
    score: float
    landmarks: np.ndarray  # (68, 2) in frame pixels, NaN without a landmark model


def _rotation(height: int, width: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine ``(2, 3)`` that rotates a frame by ``angle`` degrees about its centre into a canvas that holds all of it."""
    import cv2

    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w = round(height * sin + width * cos)
    new_h = round(height * cos + width * sin)
    matrix[0, 2] += new_w / 2.0 - width / 2.0
    matrix[1, 2] += new_h / 2.0 - height / 2.0
    return matrix, (new_h, new_w)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply an affine ``(2, 3)`` to points ``(n, 2)``."""
    return np.asarray(points @ matrix[:, :2].T + matrix[:, 2])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes ``(4,)``."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _eye_tilt(landmarks: np.ndarray) -> float:
    """In-image tilt of the eye line in degrees, counter-clockwise positive (y points down)."""
    dx, dy = landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0)
    return float(-np.degrees(np.arctan2(dy, dx)))


def _given_boxes(boxes: Any, count: int) -> np.ndarray:
    """Validate user boxes: ``(4,)`` or ``(count, 4)`` finite pixels with x0 < x1, y0 < y1 -> ``(count, 4)``."""
    try:
        array = np.asarray(
            boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else boxes, dtype=np.float64
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"boxes must be numbers (x0, y0, x1, y1), got {boxes!r}") from exc
    if array.shape == (4,):
        array = np.broadcast_to(array, (count, 4))
    if array.shape != (count, 4):
        raise InputError(
            f"boxes must have shape (4,) or ({count}, 4) for {count} frame(s), got {array.shape}"
        )
    if (
        not np.isfinite(array).all()
        or not ((array[:, 0] < array[:, 2]) & (array[:, 1] < array[:, 3])).all()
    ):
        raise InputError(
            "boxes must be finite with x0 < x1 and y0 < y1 (top-left corner, then bottom-right)"
        )
    return array


class FaceAnalyzer:
    """Find the face in every frame and measure it: box, 68 landmarks, head pose, mouth opening.

    Parameters
    ----------
    backend
        ``"dlib"``: dlib's HOG face detector, 68-point shape predictor and the pose fit
        (``pip install "emo[face]"``); ``"haar"``: OpenCV's Haar cascade, boxes only;
        ``"auto"`` (default): dlib when installed, else Haar.
    detect_side
        Frames are downscaled to at most this many pixels on the longer side for the first
        detection pass (landmarks always use the full frame). 320 finds faces down to about
        a quarter of the frame's longer side in one fast pass.
    search
        When the fast pass finds nothing: look again at a finer scale (faces down to about
        40 px) and in rotated copies of the frame (tilted and upside-down faces).
    threshold
        dlib detector threshold (SVM margin); lower finds more faces and more false ones.

    Raises
    ------
    PluginLoadError
        If the backend's packages are missing (the message says what to install).
    InputError
        For an unknown backend or a bad setting.

    Examples
    --------
    ::

        from emo.face import FaceAnalyzer
        track = FaceAnalyzer().analyze(frames)    # uint8 (f, h, w, 3)
        track.poses                               # (f, 3) yaw, pitch, roll in degrees
        track.mouth_opening                       # (f,)
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        detect_side: int = 320,
        search: bool = True,
        threshold: float = 0.0,
    ) -> None:
        if backend not in BACKENDS:
            raise InputError(
                f"unknown face backend {backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        if isinstance(detect_side, bool) or not isinstance(detect_side, int) or detect_side < 64:
            raise InputError(f"detect_side must be an int >= 64 (pixels), got {detect_side!r}")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not np.isfinite(threshold)
        ):
            raise InputError(f"threshold must be a finite number, got {threshold!r}")
        self.backend = available_backend() if backend == "auto" else backend
        self.detect_side = detect_side
        self.search = bool(search)
        self.threshold = float(threshold)
        self._cv2 = import_cv2()
        self._haar: HaarDetector | None = None
        if self.backend == "dlib":
            self._detector = _models.load_detector()
            self._shape = _models.load_shape()
        else:
            self._haar = HaarDetector()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only; the models are loaded again (once per process) on unpickling."""
        return {
            "backend": self.backend,
            "detect_side": self.detect_side,
            "search": self.search,
            "threshold": self.threshold,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from the pickled settings."""
        self.__init__(  # type: ignore[misc]
            state["backend"],
            detect_side=state["detect_side"],
            search=state["search"],
            threshold=state["threshold"],
        )

    def __repr__(self) -> str:
        return f"FaceAnalyzer(backend={self.backend!r}, detect_side={self.detect_side}, search={self.search})"

    # -- one frame -----------------------------------------------------------------------
    def _dlib_faces(
        self, image: np.ndarray, side: int, upsample: int
    ) -> tuple[list[Any], list[float], float]:
        """Detections in ``image`` downscaled to ``side``; returns rects, scores and the scale used."""
        cv2 = self._cv2
        height, width = image.shape[:2]
        scale = min(1.0, side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(small, upsample, self.threshold)
        return list(rects), [float(s) for s in scores], scale

    def _fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        dlib = _models.import_dlib()
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        shape = self._shape(image, dlib.rectangle(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 landmarks of the face in ``box``; a tilted face is fitted again in an upright copy.

        The shape predictor starts from an upright mean face, so a face tilted by more than
        about 10 degrees is fitted again after rotating the image by the tilt measured on
        the eyes (the detector finds faces tilted up to about 35 degrees).
        """
        points = self._fit(image, box)
        tilt = _eye_tilt(points)
        if abs(tilt) <= 10.0:
            return points
        height, width = image.shape[:2]
        matrix, (new_h, new_w) = _rotation(height, width, -tilt)
        upright = self._cv2.warpAffine(image, matrix, (new_w, new_h), flags=self._cv2.INTER_LINEAR)
        centre = _apply(matrix, ((box[:2] + box[2:]) / 2.0)[None])[0]
        half = (box[2:] - box[:2]) / 2.0
        refit = self._fit(upright, np.concatenate([centre - half, centre + half]))
        return _apply(self._cv2.invertAffineTransform(matrix), refit)

    def _detect_dlib(self, frame: np.ndarray) -> tuple[list[_Face], str]:
        height, width = frame.shape[:2]
        passes: list[tuple[float, int, int]] = [(0.0, self.detect_side, 0)]
        if self.search:
            if max(height, width) > self.detect_side:
                passes.append((0.0, 2 * self.detect_side, 0))
            passes.append((0.0, 2 * self.detect_side, 1))
            passes += [(angle, self.detect_side, 0) for angle in _SEARCH_ANGLES]
        for angle, side, upsample in passes:
            image, matrix = frame, None
            if angle:
                matrix, (new_h, new_w) = _rotation(height, width, angle)
                image = self._cv2.warpAffine(
                    frame, matrix, (new_w, new_h), flags=self._cv2.INTER_LINEAR
                )
            rects, scores, scale = self._dlib_faces(image, side, upsample)
            if not rects:
                continue
            # Weak detections far below the best one are texture, not a second face.
            best = max(scores)
            kept = [
                (r, sc) for r, sc in zip(rects, scores, strict=True) if sc >= best - _SCORE_MARGIN
            ]
            rects, scores = [r for r, _ in kept], [sc for _, sc in kept]
            faces = []
            for rect, score in zip(rects, scores, strict=True):
                box = (
                    np.array(
                        [rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1],
                        dtype=np.float64,
                    )
                    / scale
                )
                landmarks = self._landmarks(image, box)
                if matrix is not None:  # back to the frame's own coordinates
                    landmarks = _apply(self._cv2.invertAffineTransform(matrix), landmarks)
                # The landmarks' bounding box (eyebrows to chin, jaw side to jaw side) moves
                # smoothly with the face; the detector's box snaps to its 8-pixel HOG cells.
                box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])
                box = np.clip(box, 0, [width, height, width, height])
                faces.append(_Face(box=box, score=score, landmarks=landmarks))
            note = f"found in the frame turned by {angle:g} degrees" if angle else ""
            return faces, note
        return [], "no face found" + (
            " (faces smaller than about 40 px are not detected)" if self.search else ""
        )

    def _detect_haar(self, frame: np.ndarray) -> tuple[list[_Face], str]:
        assert self._haar is not None
        boxes = self._haar.detect(frame)
        nan = np.full((NUM_LANDMARKS, 2), np.nan)
        faces = [_Face(box=box, score=float("nan"), landmarks=nan) for box in boxes]
        return faces, "" if faces else "no face found"

    def analyze_frame(
        self,
        frame: np.ndarray,
        box: np.ndarray | None = None,
        *,
        previous: np.ndarray | None = None,
    ) -> tuple[_Face | None, int, str]:
        """Analyse one uint8 RGB frame ``(h, w, 3)``: the chosen face, the face count and a note.

        Parameters
        ----------
        frame
            uint8 RGB ``(h, w, 3)``.
        box
            ``(4,)`` pixels: skip the detector and fit the landmarks in this box (dlib backend).
        previous
            The face box of the previous frame of a clip: among several faces, the one that
            overlaps it most is chosen (the track follows one person); otherwise the largest.
        """
        if box is not None:
            landmarks = (
                self._landmarks(frame, box)
                if self.backend == "dlib"
                else np.full((NUM_LANDMARKS, 2), np.nan)
            )
            return _Face(box=box, score=float("nan"), landmarks=landmarks), 1, "box given"
        if int(frame.max()) - int(frame.min()) < _BLANK_RANGE:
            return None, 0, "blank frame (a single colour): no face"
        faces, note = (
            self._detect_dlib(frame) if self.backend == "dlib" else self._detect_haar(frame)
        )
        if not faces:
            return None, 0, note
        if len(faces) == 1:
            return faces[0], 1, note
        chosen, how = None, "the largest is analysed"
        if previous is not None and np.isfinite(previous).all():
            overlaps = [_iou(face.box, previous) for face in faces]
            if max(overlaps) > 0.3:
                chosen = faces[int(np.argmax(overlaps))]
                how = "the one of the previous frame is analysed"
        if chosen is None:
            areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
            chosen = faces[int(np.argmax(areas))]
        note = (note + "; " if note else "") + f"{len(faces)} faces, {how}"
        return chosen, len(faces), note

    # -- clips ---------------------------------------------------------------------------
    def analyze(
        self,
        frames: Any,
        *,
        boxes: Any = None,
        require_face: bool = False,
        fps: float | None = None,
        previous_box: Any = None,
    ) -> FaceTrack:
        """Analyse every frame of a clip (or one image).

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)`` or one image ``(h, w, 3)``, numpy or torch; grayscale
            ``(h, w)`` / ``(f, h, w)`` and RGBA ``(..., 4)`` are accepted (see
            :func:`emo.face._frames.as_rgb_frames`), float in ``[0, 1]`` too.
        boxes
            Known face boxes, ``(4,)`` for every frame or ``(f, 4)``, x0, y0, x1, y1 in
            pixels: the detector is skipped and the landmarks are fitted in these boxes. Use it
            for drawn faces the detector misses; the box should span the face as dlib's
            detector does: about from the eyebrows to the chin, as wide as the cheeks.
        require_face
            Raise :class:`~emo.errors.FaceNotFoundError` when no frame has a face (default:
            return a track whose ``found`` is all false, with the reason in ``notes``).
        fps
            Frame rate, stored in the track for :func:`emo.face.head_speed`.
        previous_box
            The face box ``(4,)`` of the frame just before these, when a long clip is analysed
            in batches: the track then goes on following the same face.

        Returns
        -------
        FaceTrack
            Per-frame arrays; frames without a face hold NaN.

        Notes
        -----
        With several faces in a frame, the frame's note says so and the face analysed is the
        one that overlaps the previous frame's face most (a clip follows one person), or the
        largest when none does (the first frame, or after a cut).

        Warns
        -----
        EMOWarning
            When a frame holds several faces.
        """
        array = as_rgb_frames(frames)
        count, height, width = array.shape[:3]
        given = None if boxes is None else _given_boxes(boxes, count)
        found = np.zeros(count, dtype=bool)
        boxes = np.full((count, 4), np.nan, dtype=np.float32)
        scores = np.full(count, np.nan, dtype=np.float32)
        landmarks = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
        poses = np.full((count, 3), np.nan, dtype=np.float32)
        num_faces = np.zeros(count, dtype=np.int64)
        notes: list[str] = []
        previous = None if previous_box is None else np.asarray(previous_box, dtype=np.float64)
        for i, frame in enumerate(array):
            face, num, note = self.analyze_frame(
                frame, None if given is None else given[i], previous=previous
            )
            notes.append(note)
            num_faces[i] = num
            if face is None:
                continue
            previous = face.box
            found[i] = True
            boxes[i] = face.box
            scores[i] = face.score
            landmarks[i] = face.landmarks
            if np.isfinite(face.landmarks).all():
                poses[i] = solve_pose(self._cv2, face.landmarks, height, width)
        crowded = int(num_faces.max(initial=0))
        if crowded > 1:
            warnings.warn(
                f"face analysis found up to {crowded} faces in a frame and measures one (the "
                "largest, then the same face in the frames that follow); crop the frames to the "
                "face you want",
                EMOWarning,
                stacklevel=2,
            )
        if require_face and not found.any():
            raise FaceNotFoundError(
                f"no face found in the {count} frame(s) of {width}x{height} "
                f"({notes[0] if notes else ''}); give a frame with a visible face at least "
                "about 40 px wide"
            )
        return FaceTrack(
            found=found,
            boxes=boxes,
            scores=scores,
            landmarks=landmarks,
            poses=poses,
            mouth_opening=mouth_opening(landmarks),
            num_faces=num_faces,
            notes=tuple(notes),
            backend=self.backend,
            size=(height, width),
            fps=fps,
        )

    def analyze_video(
        self,
        path: str | os.PathLike[str],
        *,
        max_frames: int | None = None,
        batch_size: int = 32,
        progress: bool = False,
    ) -> FaceTrack:
        """Analyse a video file, decoding ``batch_size`` frames at a time (memory stays small).

        Parameters
        ----------
        path
            Any video FFmpeg reads.
        max_frames
            Analyse only the first ``max_frames`` frames.
        batch_size
            Frames decoded per batch.
        progress
            Show a progress bar (tqdm, on stderr).

        Returns
        -------
        FaceTrack
            With ``fps`` set from the file.

        Raises
        ------
        VideoError
            If the file cannot be read.
        """
        import av
        from tqdm import tqdm

        from emo.io.reader import VideoReader

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise InputError(f"max_frames must be a positive int or None, got {max_frames!r}")
        tracks: list[FaceTrack] = []
        previous: np.ndarray | None = None

        def flush(batch: list[np.ndarray], fps: float) -> None:
            nonlocal previous
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EMOWarning)  # summarised once below
                track = self.analyze(np.stack(batch), fps=fps, previous_box=previous)
            hits = np.flatnonzero(track.found)
            if len(hits):
                previous = track.boxes[hits[-1]]
            tracks.append(track)

        with VideoReader(path, threads=False) as video:
            total = len(video) if max_frames is None else min(len(video), max_frames)
            # Decoded in order, one frame at a time: memory holds one batch.
            with tqdm(total=total, unit="frame", desc="face analysis", disable=not progress) as bar:
                batch: list[np.ndarray] = []
                try:
                    for count, frame in enumerate(video, start=1):
                        batch.append(frame.numpy())
                        if len(batch) == batch_size:
                            flush(batch, video.fps)
                            bar.update(len(batch))
                            batch = []
                        if max_frames is not None and count >= max_frames:
                            break
                except av.error.FFmpegError as exc:
                    raise VideoError(f"decoding {os.fspath(path)!r} failed: {exc}") from exc
                if batch:
                    flush(batch, video.fps)
                    bar.update(len(batch))
        if not tracks:
            raise InputError(f"video {os.fspath(path)!r} has no frames to analyse")
        track = FaceTrack.concatenate(tracks)
        crowded = int(track.num_faces.max(initial=0))
        if crowded > 1:
            warnings.warn(
                f"face analysis found up to {crowded} faces in a frame of {os.fspath(path)!r} "
                "and measures one (the largest, then the same face)",
                EMOWarning,
                stacklevel=2,
            )
        return track
