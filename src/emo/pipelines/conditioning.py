"""Turn user inputs into what the networks consume: portrait, face region, audio, speed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emo.errors import AudioError, FaceNotFoundError, InputError

if TYPE_CHECKING:
    from emo.models.reference_net import MotionFeatures, ReferenceFeatures, ReferenceNet

__all__ = [
    "ClipAudioFeatures",
    "PreparedPortrait",
    "clip_speed_window",
    "first_clip_motion_features",
    "guidance_branch_count",
    "guided_prediction",
    "head_speed_track",
    "next_motion_latents",
    "prepare_portrait",
]


@dataclass(frozen=True)
class PreparedPortrait:
    """The portrait cropped around the face and resized, with its face-region mask.

    Attributes
    ----------
    image
        uint8 ``(h, w, 3)``.
    mask
        float32 ``(1, h, w)`` in {0, 1}: the region the face may move in.
    crop_box
        ``(x0, y0, x1, y1)`` of the crop in the original image's pixels.
    """

    image: np.ndarray
    mask: torch.Tensor
    crop_box: tuple[int, int, int, int]


def _mask_bbox(mask: torch.Tensor, what: str) -> tuple[float, float, float, float]:
    """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the non-zero pixels of a ``(1, h, w)`` mask."""
    ys, xs = torch.nonzero(mask[0] > 0.5, as_tuple=True)
    if ys.numel() == 0:
        raise FaceNotFoundError(
            f"the face mask found no face region in {what}; use face_mask='box' with the face's "
            "box, or face_mask='full'"
        )
    return (
        float(xs.min()),
        float(ys.min()),
        float(xs.max()) + 1.0,
        float(ys.max()) + 1.0,
    )


def prepare_portrait(
    image: Any, face_mask: Any, *, height: int, width: int, crop_scale: float
) -> PreparedPortrait:
    """Load a portrait, find its face region, crop around it and resize.

    The face region is the mask the face-mask plugin returns for the image. The crop
    is that region's bounding box grown ``crop_scale`` times around its centre, but
    never past the image's size, then brought to the output aspect ratio (see
    :func:`emo.io.image.grow_box_within`): a face region that spans the image (the
    ``full`` mask) keeps the whole image. The mask is mapped into the crop, so the
    face locator sees where the face is.

    Parameters
    ----------
    image
        Anything :func:`emo.io.image.load_image` takes (path, PIL image, array, tensor;
        RGBA and grayscale are converted).
    face_mask
        A face-mask plugin instance: ``face_mask(frames (1, h, w, 3)) -> (1, 1, h, w)``.
    height, width
        Output size in pixels.
    crop_scale
        Growth of the face box before cropping (limited by the image's size).
    """
    from emo.face_masks.base import box_to_mask
    from emo.io.image import crop_and_resize, expand_box_to_aspect, grow_box_within, load_image

    array = load_image(image)
    img_h, img_w = array.shape[:2]
    mask = face_mask(array[None])
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (1, 1, img_h, img_w):
        raise InputError(
            f"face mask {type(face_mask).__name__} returned "
            f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}; "
            f"it must return a float tensor (1, 1, {img_h}, {img_w})"
        )
    x0, y0, x1, y1 = _mask_bbox(mask[0], "the portrait")
    grown = grow_box_within((x0, y0, x1, y1), crop_scale, width / height, img_h, img_w)
    crop = expand_box_to_aspect(grown, width / height, img_h, img_w)
    portrait = crop_and_resize(array, grown, height, width)
    scale_x, scale_y = width / (crop[2] - crop[0]), height / (crop[3] - crop[1])
    face_in_crop = (
        (x0 - crop[0]) * scale_x,
        (y0 - crop[1]) * scale_y,
        (x1 - crop[0]) * scale_x,
        (y1 - crop[1]) * scale_y,
    )
    clipped = (
        min(max(face_in_crop[0], 0.0), width),
        min(max(face_in_crop[1], 0.0), height),
        min(max(face_in_crop[2], 0.0), width),
        min(max(face_in_crop[3], 0.0), height),
    )
    region = box_to_mask(torch.tensor(clipped, dtype=torch.float32), height, width)
    return PreparedPortrait(image=portrait, mask=region, crop_box=crop)


def head_speed_track(
    speed: float | Sequence[float] | torch.Tensor | np.ndarray, num_frames: int
) -> torch.Tensor:
    """Per-frame head-rotation speeds ``(num_frames,)`` from a constant or a sequence.

    Raises
    ------
    InputError
        If the values are not finite and non-negative, or a sequence is shorter than the video.
    """
    if isinstance(speed, bool) or (
        isinstance(speed, (np.ndarray, torch.Tensor)) and speed.dtype in (np.bool_, torch.bool)
    ):
        raise InputError(
            f"head_motion_speed must be a number of degrees per frame, got {speed!r}; "
            "a bool is not a speed"
        )
    if isinstance(speed, (int, float)):
        track = torch.full((num_frames,), float(speed), dtype=torch.float32)
    else:
        try:
            track = torch.as_tensor(np.asarray(speed, dtype=np.float32)).flatten()
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"head_motion_speed must be a number or a sequence of numbers, got {type(speed).__name__}"
            ) from exc
        if track.numel() < num_frames:
            raise InputError(
                f"head_motion_speed has {track.numel()} values but the video has {num_frames} frames; "
                "give one speed per frame (or a single number)"
            )
        track = track[:num_frames]
    if not torch.isfinite(track).all() or (track < 0).any():
        raise InputError("head_motion_speed values must be finite and >= 0 (degrees per frame)")
    return track


def clip_speed_window(track: torch.Tensor, start: int, stop: int, context: int) -> torch.Tensor:
    """Speeds of frames ``start - context .. stop + context - 1`` as a batch of one.

    The speed layers describe frame ``t`` by the speeds of frames ``t-m .. t+m``; giving a
    clip its real neighbours (from the previous and next clips) keeps the code continuous
    across clip boundaries. Frames before 0 or past the end repeat the first or last one.

    Parameters
    ----------
    track
        Per-frame speeds of the whole video ``(frames,)``.
    start, stop
        The clip's frames.
    context
        ``m``, frames of context on each side.

    Returns
    -------
    torch.Tensor
        ``(1, stop - start + 2 context)``.
    """
    index = torch.arange(start - context, stop + context).clamp(0, track.shape[0] - 1)
    return track[index.to(track.device)][None]


def first_clip_motion_features(
    reference_net: ReferenceNet,
    ref_latent: torch.Tensor,
    ref_features: ReferenceFeatures,
    num_frames: int,
    mode: str = "zeros",
) -> MotionFeatures | None:
    """Motion features for the first clip, which has no previous frames.

    Parameters
    ----------
    reference_net
        The ReferenceNet (used by ``mode="reference"`` only).
    ref_latent
        The reference image's latent ``(1, c, h, w)``.
    ref_features
        The ReferenceNet features of ``ref_latent`` (their layer shapes give the zero maps).
    num_frames
        Motion frames ``n``; 0 gives ``None`` (no motion frames).
    mode
        ``"zeros"``: zero feature maps at every layer (the paper). ``"reference"``: the
        reference latent repeated ``n`` times through the ReferenceNet.

    Returns
    -------
    MotionFeatures or None
        Batch 1, ``(1, c, n, h, w)`` per layer.
    """
    from emo.models.reference_net import MotionFeatures

    if num_frames == 0:
        return None
    if mode == "zeros":
        return MotionFeatures.zeros(
            {k: v[:1] for k, v in ref_features.layers.items()}, num_frames=num_frames
        )
    if mode == "reference":
        latents = ref_latent[:, :, None].expand(-1, -1, num_frames, -1, -1)
        return reference_net.motion_features(latents)
    raise InputError(f"first_clip_motion must be 'zeros' or 'reference', got {mode!r}")


def next_motion_latents(
    previous: torch.Tensor | None, clip: torch.Tensor, num_frames: int
) -> torch.Tensor | None:
    """The last ``num_frames`` latents of everything generated so far ``(1, c, n, h, w)``.

    ``previous`` holds the motion latents used for ``clip`` (``None`` for the first clip);
    a clip shorter than ``n`` frames keeps the tail of ``previous``.
    """
    if num_frames == 0:
        return None
    history = clip if previous is None else torch.cat([previous, clip], dim=2)
    return history[:, :, -num_frames:]


class ClipAudioFeatures:
    """Audio-encoder features for any range of video frames, with bounded memory.

    The encoder runs on blocks of audio (a few seconds plus ``context_seconds`` of real
    audio on each side); only the current block is kept, so memory does not grow with
    the audio. The last block starts early enough to be a whole block. A block's inner
    features equal a whole-file encoding for encoders that only see nearby audio (``mel``,
    exactly); for wav2vec2, which attends to everything it is given and normalises over
    it, they differ slightly: with 2 s of context a mean of about 3% of a layer's
    standard deviation and at most about 0.4 (measured on a randomly initialised
    wav2vec2-base, 40 s of speech, by ``benchmarks/audio_blocks.py``; run it on your
    checkpoint for its figure). Frames outside the audio repeat the edge frame,
    the same convention as :class:`emo.models.audio_projection.AudioProjection`.

    Parameters
    ----------
    encoder
        An audio-encoder plugin.
    waveform
        Mono float32 ``(samples,)`` at ``encoder.sample_rate``.
    fps
        Video frame rate.
    num_frames
        Frames in the video.
    context_seconds
        Audio the encoder sees beyond each block edge.
    block_frames
        Frames encoded per block (at least a clip plus its context window).
    """

    def __init__(
        self,
        encoder: Any,
        waveform: torch.Tensor,
        *,
        fps: float,
        num_frames: int,
        context_seconds: float,
        block_frames: int,
    ) -> None:
        self.encoder = encoder
        self.waveform = waveform
        self.sample_rate = int(encoder.sample_rate)
        self.fps = fps
        self.num_frames = num_frames
        self.margin = math.ceil(context_seconds * fps)
        self.block_frames = max(1, block_frames)
        self._start = 0
        self._features: torch.Tensor | None = None

    def _encode_block(self, start: int) -> None:
        from emo.audio.alignment import frame_to_sample

        # The last block is not left short: it starts early enough to span a whole block,
        # since the encoder's features depend on all the audio it sees (a short block
        # differs most from a whole-file encoding).
        start = max(0, min(start, self.num_frames - self.block_frames))
        stop = min(self.num_frames, start + self.block_frames)
        lo, hi = max(0, start - self.margin), min(self.num_frames, stop + self.margin)
        a = frame_to_sample(lo, self.sample_rate, self.fps)
        b = (
            self.waveform.shape[0]
            if hi == self.num_frames
            else frame_to_sample(hi, self.sample_rate, self.fps)
        )
        features = self.encoder.encode(
            self.waveform[a:b], self.sample_rate, num_frames=hi - lo, fps=self.fps
        )
        if (
            not isinstance(features, torch.Tensor)
            or features.ndim != 3
            or features.shape[0] != hi - lo
        ):
            raise AudioError(
                f"audio encoder {type(self.encoder).__name__} returned "
                f"{tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__}"
                f" for {hi - lo} frames; it must return (frames, layers, dim)"
            )
        self._start = start
        self._features = features[start - lo : stop - lo]

    def window(self, start: int, stop: int, context: int) -> torch.Tensor:
        """Features of frames ``start - context .. stop + context - 1``, ``(stop - start + 2 context, layers, dim)``.

        Frames before 0 or past the end repeat the first or last frame.
        """
        first = max(0, start - context)
        last = min(self.num_frames, stop + context)
        cached = self._features
        if cached is None or first < self._start or last > self._start + cached.shape[0]:
            self.block_frames = max(self.block_frames, last - first)
            self._encode_block(first)
            cached = self._features
        assert cached is not None
        index = (
            torch.arange(start - context, stop + context).clamp(0, self.num_frames - 1)
            - self._start
        )
        return cached[index.to(cached.device)]


def guidance_branch_count(audio_scale: float, reference_scale: float) -> int:
    """How many of the branches ``[full, reference only, neither]`` guidance needs.

    Reference guidance needs all three, audio guidance alone the first two, no guidance
    (both scales 1) only the full one.
    """
    if reference_scale != 1.0:
        return 3
    return 2 if audio_scale != 1.0 else 1


def guided_prediction(
    full: torch.Tensor,
    reference_only: torch.Tensor,
    neither: torch.Tensor | None,
    audio_scale: float,
    reference_scale: float,
) -> torch.Tensor:
    """Classifier-free guidance over the branches "full", "reference only" and "neither".

    ``reference_only + audio_scale * (full - reference_only)``, plus
    ``(reference_scale - 1) * (reference_only - neither)`` when ``neither`` is given: audio
    guidance pushes away from the prediction without the audio, reference guidance away
    from the one without the reference either. Linear, so it holds for epsilon, v and x0
    predictions alike.

    Parameters
    ----------
    full, reference_only
        ``(b, c, f, h, w)`` predictions with every condition, and without the audio.
    neither
        ``(b, c, f, h, w)`` prediction without the audio and the reference, or ``None``
        (no reference guidance).
    audio_scale, reference_scale
        The guidance scales (1: off).
    """
    guided = reference_only + audio_scale * (full - reference_only)
    if neither is not None:
        guided = guided + (reference_scale - 1.0) * (reference_only - neither)
    return guided
