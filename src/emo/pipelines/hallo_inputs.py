"""Hallo's inputs from a portrait and an audio track: portrait pixels, masks, embedding, audio.

What Hallo's ``scripts/inference.py`` computes before its clip loop, with emo's parts:

- the portrait, resized to the output size with Pillow's bilinear filter (emo's exact
  replica, :func:`emo.io.resample.resize_bilinear_pil`) and mapped to ``[-1, 1]``. Hallo
  expects a square portrait and stretches any other; emo first crops a non-square one to
  its largest centred square;
- the face region and the mask pyramid (:mod:`emo.face_masks.hallo`), from given
  masks, given landmarks (MediaPipe's 478 points reproduce Hallo exactly) or emo's own
  68-point landmarks;
- the face embedding: given, from the pipeline's face embedder (insightface's models run
  with onnxruntime), or zeros when there is none (Hallo's own fallback when it finds no
  face);
- the per-frame audio features of the whole track (the audio encoder in Hallo's mode),
  padded to whole clips, and their 5-frame windows.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from emo.audio.hallo_features import hallo_frame_count
from emo.errors import InputError
from emo.pipelines.hallo_sampler import HalloConditions, LazyAudioWindows, hallo_audio_windows

__all__ = ["HalloInputs", "prepare_hallo_inputs", "prepare_portrait_square"]


@dataclass
class HalloInputs:
    """Everything one generation needs besides the networks.

    Attributes
    ----------
    conditions
        The :class:`~emo.pipelines.hallo_sampler.HalloConditions` of the sampler.
    portrait
        The portrait as generated from, uint8 ``(H, W, 3)``.
    waveform
        The audio the features came from, mono float32 at the encoder's rate.
    num_frames
        Frames of the video: ``ceil(samples / rate * fps)`` (the clips cover
        ``ceil(num_frames / f) * f``; the rest is cut).
    """

    conditions: HalloConditions
    portrait: np.ndarray
    waveform: torch.Tensor
    num_frames: int


def prepare_portrait_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of ``image`` (uint8 ``(h, w, 3)``); a square one as it is."""
    height, width = image.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    return image[y0 : y0 + side, x0 : x0 + side]


def _masks(
    portrait: np.ndarray,
    latent_size: int,
    output_size: int,
    *,
    masks: Any,
    landmarks: Any,
    face_expand_ratio: float,
) -> Any:
    from emo.face_masks.hallo import (
        HalloMasks,
        hallo_masks_from_image,
        hallo_masks_from_landmarks,
    )

    size = (output_size, output_size)
    if masks is not None:
        if not isinstance(masks, HalloMasks):
            raise InputError(
                f"masks must be emo.face_masks.hallo.HalloMasks, got {type(masks).__name__}; "
                "make them with hallo_masks_from_boxes / hallo_masks_from_landmarks"
            )
        return masks
    if landmarks is not None:
        return hallo_masks_from_landmarks(
            landmarks,
            portrait.shape[:2],
            latent_size,
            output_size=size,
            face_expand_ratio=face_expand_ratio,
        )
    return hallo_masks_from_image(
        portrait, latent_size, output_size=size, face_expand_ratio=face_expand_ratio
    )


def prepare_hallo_inputs(
    pipe: Any,
    image: Any,
    audio: Any,
    *,
    audio_rate: int | None = None,
    size: int,
    fps: float,
    frames_per_clip: int,
    face_embedding: torch.Tensor | None = None,
    masks: Any = None,
    landmarks: Any = None,
    vocal_separation: bool | None = None,
) -> HalloInputs:
    """Compute Hallo's inputs for :class:`~emo.pipelines.hallo_pipeline.HalloPipeline`.

    Parameters
    ----------
    pipe
        The pipeline (its audio encoder, face embedder, vocal separator and settings).
    image
        The portrait: anything :func:`emo.io.image.load_image` takes.
    audio
        Anything :func:`emo.audio.loading.load_audio` takes.
    audio_rate
        The rate of an array ``audio``.
    size
        Output size in pixels (square).
    fps
        Frame rate.
    frames_per_clip
        Clip length ``f``: the features are padded to whole clips, as Hallo pads.
    face_embedding
        ``(E,)``: skip the face embedder.
    masks
        :class:`~emo.face_masks.hallo.HalloMasks` computed on the portrait as given.
    landmarks
        ``(N, 2)`` pixel landmarks of the portrait as given (MediaPipe's 478 points).
    vocal_separation
        Separate the vocals first: ``None`` when the pipeline has a separator.
    """
    from emo.audio.loading import load_audio
    from emo.io.image import load_image
    from emo.io.resample import resize_bilinear_pil

    encoder = pipe.audio_encoder
    if encoder is None:
        raise InputError(
            "HalloPipeline: this pipeline has no audio encoder, so it cannot read audio; "
            "load Hallo's folder with its wav2vec/ part, or use generate_from_conditions"
        )
    factor = 2 ** (len(pipe.vae.config["block_out_channels"]) - 1)
    if size % factor:
        raise InputError(f"size must be a multiple of {factor}, got {size}")
    original = load_image(image)
    if original.shape[0] != original.shape[1] and (masks is not None or landmarks is not None):
        raise InputError(
            f"the portrait is {original.shape[1]}x{original.shape[0]}: masks or landmarks "
            "given with it must belong to a square portrait (Hallo's input); crop it first"
        )
    square = prepare_portrait_square(original)
    face_masks = _masks(
        square,
        size // factor,
        size,
        masks=masks,
        landmarks=landmarks,
        face_expand_ratio=float(pipe.settings.face_expand_ratio),
    )
    portrait = resize_bilinear_pil(square, (size, size))
    pixels = torch.from_numpy(np.ascontiguousarray(portrait)).permute(2, 0, 1).float() / 255.0
    reference = (pixels - 0.5) / 0.5

    if face_embedding is None:
        embedder = getattr(pipe, "face_embedder", None)
        if embedder is None:
            warnings.warn(
                "HalloPipeline: no face embedder (Hallo's face_analysis/models); the identity "
                "tokens come from a zero embedding, which Hallo uses when it finds no face",
                stacklevel=3,
            )
            face_embedding = torch.zeros(int(pipe.face_projection.config["embedding_dim"]))
        else:
            face_embedding = embedder.embed(square)
    face_embedding = torch.as_tensor(face_embedding, dtype=torch.float32).reshape(-1)

    rate = int(encoder.sample_rate)
    separator = getattr(pipe, "vocal_separator", None)
    if vocal_separation and separator is None:
        raise InputError(
            "vocal separation was asked for but the pipeline has no vocal separator (Hallo's "
            "audio_separator/Kim_Vocal_2.onnx); pass vocal_separation=False"
        )
    if separator is not None and vocal_separation is not False:
        file_reader = getattr(separator, "separate_file", None)
        if isinstance(audio, (str, os.PathLike)) and callable(file_reader):
            # A file is read block by block, in stereo, as Hallo's separator reads it.
            waveform = file_reader(audio, output_rate=rate)
        else:
            source = load_audio(
                audio, sample_rate=int(separator.sample_rate), source_rate=audio_rate
            )
            vocals = separator.separate(source, int(separator.sample_rate))
            waveform = load_audio(
                vocals.numpy(), sample_rate=rate, source_rate=int(separator.sample_rate)
            )
    else:
        waveform = load_audio(audio, sample_rate=rate, source_rate=audio_rate)
    # Hallo's seq_len, in Hallo's float arithmetic (4480 samples at 16 kHz: 8 frames)
    num_frames = max(1, hallo_frame_count(int(waveform.shape[0]), rate, float(fps)))
    padded = math.ceil(num_frames / frames_per_clip) * frames_per_clip
    context = int(pipe.audio_projection.config["context_frames"])
    windows: torch.Tensor | LazyAudioWindows
    blocks = getattr(encoder, "feature_blocks", None)
    if callable(blocks) and getattr(encoder, "mode", None) == "hallo":
        # Clip by clip: only one transformer block of features is in memory at a time.
        source = blocks(waveform, rate, num_frames=padded, fps=float(fps))
        windows = LazyAudioWindows(source, padded, context)
    else:
        features = encoder.encode(waveform, rate, num_frames=padded, fps=float(fps))
        windows = hallo_audio_windows(features.float().cpu(), context_frames=context)
    conditions = HalloConditions(
        reference_image=reference,
        face_embedding=face_embedding,
        face_region=face_masks.face_region,
        masks=face_masks.audio_masks(pipe.settings.region_weights),
        audio_windows=windows,
    )
    return HalloInputs(conditions, portrait, waveform, num_frames)
