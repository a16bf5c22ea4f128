"""Hallo's denoising loop on emo's networks, from precomputed conditions.

This is the low-level entry for researchers: give it the portrait (pixels), the
face embedding, the face region, the mask pyramid, the per-frame audio windows and
a generator (or the initial noise of every clip) and it runs Hallo's inference path
clip after clip (see ``docs/guide/hallo.md``):

1. the reference pass: the VAE latents of ``[portrait, motion frame 1, motion frame
   2]``, repeated for the two guidance rows, go through the ReferenceNet at timestep 0
   with the face tokens *tiled* ``[uncond, cond, uncond, cond, uncond, cond]`` (Hallo's
   pairing); the tokens entering every first self-attention are rounded to float16
   (Hallo stores them so) and give the conditional row's reference tokens and each
   row's motion-frame context. Hallo hands the reference tokens to the frames with a
   ``repeat`` that tiles the two rows' tokens over the frames: frame ``j`` of the
   conditional row reads the portrait as encoded with the unconditional face tokens
   when ``f + j`` is even, with the conditional ones when it is odd; emo keeps this;
2. two guidance rows: row 0 without reference tokens, with the projection of a zero
   face embedding, zero face-locator features and zero audio tokens; row 1 with all
   conditions; ``v = v_uncond + scale (v_cond - v_uncond)``;
3. DDIM steps (the scheduler given, Hallo's: linear betas, zero terminal SNR,
   trailing spacing, v-prediction, ``set_alpha_to_one``);
4. per-frame VAE decoding; the last decoded frames become the next clip's motion
   frames (encoded again by the VAE), clip 0's are the portrait.

Nothing here depends on a particular network size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange

from emo.errors import InputError
from emo.models.audio_projection import audio_context_window
from emo.models.masked_audio import AudioMasks

__all__ = [
    "HalloClip",
    "HalloConditions",
    "HalloSampler",
    "LazyAudioWindows",
    "hallo_audio_windows",
]

#: Hallo's VAE latent scale (hard-coded in its pipeline; the SD 1.5 value).
HALLO_LATENT_SCALE = 0.18215


def hallo_audio_windows(features: torch.Tensor, context_frames: int = 2) -> torch.Tensor:
    """Per-frame windows of audio features over the whole sequence, clamped at its ends.

    Frame ``i`` gets frames ``i-m .. i+m``, indices clamped to ``[0, N-1]`` of the
    *whole* (padded) sequence, so windows cross clip boundaries (Hallo's
    ``process_audio_emb``).

    Parameters
    ----------
    features
        ``(N, layers, dim)`` features of the whole audio, one row per video frame.
    context_frames
        ``m``.

    Returns
    -------
    torch.Tensor
        ``(N, 2m+1, layers, dim)``.
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 3 or features.shape[0] == 0:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise InputError(f"hallo_audio_windows: features must be (N>0, layers, dim), got {shape}")
    return audio_context_window(features[None], context_frames)[0]


@dataclass
class LazyAudioWindows:
    """Per-frame audio windows made clip by clip from a feature source (memory: one block).

    Attributes
    ----------
    features
        ``get(start, stop) -> (stop - start, layers, dim)`` features of the whole track's
        frames (e.g. :meth:`Wav2Vec2Encoder.feature_blocks
        <emo.audio.wav2vec2.Wav2Vec2Encoder.feature_blocks>`).
    num_frames
        ``N``, frames of the whole (padded) track.
    context_frames
        ``m``: windows of ``2m+1`` frames, clamped at the ends of the whole track.
    """

    features: Callable[[int, int], torch.Tensor]
    num_frames: int
    context_frames: int = 2

    def windows(self, start: int, stop: int) -> torch.Tensor:
        """The windows of frames ``start .. stop - 1``: ``(stop - start, 2m+1, layers, dim)``."""
        m, count = self.context_frames, self.num_frames
        lo, hi = max(0, start - m), min(count, stop + m)
        feats = self.features(lo, hi)
        index = torch.arange(start - m, stop + m).clamp(0, count - 1) - lo  # whole-track ends
        return audio_context_window(feats[index.to(feats.device)][None], m, padded=True)[0]


def _window_count(windows: torch.Tensor | LazyAudioWindows) -> int:
    return windows.num_frames if isinstance(windows, LazyAudioWindows) else int(windows.shape[0])


def _clip_windows(windows: torch.Tensor | LazyAudioWindows, start: int, stop: int) -> torch.Tensor:
    if isinstance(windows, LazyAudioWindows):
        return windows.windows(start, stop)
    return windows[start:stop]


@dataclass
class HalloConditions:
    """Everything Hallo conditions a video on, already computed.

    Attributes
    ----------
    reference_image
        The portrait ``(3, H, W)`` in ``[-1, 1]``.
    face_embedding
        ``(E,)`` face-recognition embedding (insightface's raw 512 values; zeros when
        no face was found).
    face_region
        Face-locator input ``(C, H, W)`` in ``[0, 1]`` (Hallo: the face box, 3 equal channels).
    masks
        The region masks, one level per UNet resolution, rows 1 (shared by every frame).
    audio_windows
        ``(N, 2m+1, layers, dim)`` per-frame audio windows of the whole audio (see
        :func:`hallo_audio_windows`), ``N`` a multiple of the clip length; or
        :class:`LazyAudioWindows` making them clip by clip.
    """

    reference_image: torch.Tensor
    face_embedding: torch.Tensor
    face_region: torch.Tensor
    masks: AudioMasks
    audio_windows: torch.Tensor | LazyAudioWindows


@dataclass
class HalloClip:
    """One generated clip.

    Attributes
    ----------
    index
        Clip number.
    video
        Decoded frames ``(1, 3, f, H, W)`` in ``[0, 1]``.
    latents
        The final latents ``(1, c, f, h, w)`` (scaled, before decoding).
    """

    index: int
    video: torch.Tensor
    latents: torch.Tensor


#: ``on_step(clip_index, step_index, timestep, prediction, latents)``: ``prediction``
#: ``(2, c, f, h, w)`` is the network output of both rows before guidance, ``latents``
#: the latents after the step.
StepCallback = Callable[[int, int, int, torch.Tensor, torch.Tensor], None]


class HalloSampler:
    """Runs Hallo's clip loop on emo networks configured as Hallo's.

    Parameters
    ----------
    vae
        :class:`~emo.models.vae.AutoencoderKL`.
    reference_net
        :class:`~emo.models.ReferenceNet` with ``text_attention=True``.
    backbone
        :class:`~emo.models.Backbone` with ``text_attention=True``,
        ``audio_attention_type="masked"``, ``face_features_at="conv_in"``.
    face_locator, face_projection, audio_projection
        The conditioning networks.
    scheduler
        A DDIM-style scheduler (``set_timesteps``, ``timesteps``, ``step``).
    """

    def __init__(
        self,
        vae: Any,
        reference_net: Any,
        backbone: Any,
        face_locator: Any,
        face_projection: Any,
        audio_projection: Any,
        scheduler: Any,
    ) -> None:
        self.vae = vae
        self.reference_net = reference_net
        self.backbone = backbone
        self.face_locator = face_locator
        self.face_projection = face_projection
        self.audio_projection = audio_projection
        self.scheduler = scheduler

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the Backbone's weights."""
        return self.backbone.conv_in.weight.dtype  # type: ignore[no-any-return]

    @property
    def device(self) -> torch.device:
        """The device of the Backbone's weights."""
        return self.backbone.conv_in.weight.device  # type: ignore[no-any-return]

    # -- conditions ----------------------------------------------------------------------
    def face_tokens(self, face_embedding: torch.Tensor) -> torch.Tensor:
        """``(2, t, d)``: the tokens of a zero embedding (row 0) and of ``face_embedding`` (row 1)."""
        embedding = face_embedding.reshape(1, -1).to(device=self.device, dtype=self.dtype)
        return self.face_projection(torch.cat([torch.zeros_like(embedding), embedding]))  # type: ignore[no-any-return]

    def audio_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        """``(2, f, k, d)``: zeros (row 0) and the projection of a clip's windows ``(f, w, l, d)``."""
        tokens = self.audio_projection.project_windows(windows[None])[0]
        return torch.stack([torch.zeros_like(tokens), tokens])

    def face_features(self, face_region: torch.Tensor) -> torch.Tensor:
        """``(2, c0, 1, h, w)``: zeros (row 0) and the face-locator features of the region (row 1)."""
        region = face_region.to(device=self.device, dtype=self.dtype)[None, :, None]
        features = self.face_locator(region)
        return torch.cat([torch.zeros_like(features), features])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """VAE posterior means of ``(n, 3, H, W)`` images in ``[-1, 1]``, times Hallo's scale."""
        vae_dtype = next(self.vae.parameters()).dtype
        posterior = self.vae.encode(images.to(device=self.device, dtype=vae_dtype))
        return posterior.mode().to(self.dtype) * HALLO_LATENT_SCALE  # type: ignore[no-any-return]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(1, c, f, h, w)`` latents -> ``(1, 3, f, H, W)`` frames in ``[0, 1]``, one frame at a time."""
        vae_dtype = next(self.vae.parameters()).dtype
        frames = rearrange(latents, "b c f h w -> (b f) c h w") / HALLO_LATENT_SCALE
        decoded = torch.cat([self.vae.decode(frame[None].to(vae_dtype)) for frame in frames])
        video = rearrange(decoded, "(b f) c h w -> b c f h w", b=latents.shape[0])
        return (video.float() / 2 + 0.5).clamp(0, 1)

    def reference_pass(self, pixels: torch.Tensor, face_tokens: torch.Tensor) -> tuple[Any, Any]:
        """Reference tokens of the conditional row and each row's motion-frame context.

        Parameters
        ----------
        pixels
            ``(1 + n, 3, H, W)`` in ``[-1, 1]``: the portrait and the ``n`` motion frames.
        face_tokens
            ``(2, t, d)`` from :meth:`face_tokens`.

        Returns
        -------
        tuple
            :class:`~emo.models.ReferenceFeatures` of batch 2 (row 0 unused: the
            unconditional row reads no reference) and :class:`~emo.models.MotionFeatures`
            ``(2, c, n, h, w)`` per layer.
        """
        from emo.models.reference_net import MotionFeatures, ReferenceFeatures

        latents = self.encode(pixels)
        images = latents.shape[0]
        motion = images - 1
        batch = latents.repeat(2, 1, 1, 1)
        # Hallo tiles the two rows' tokens over the 2 (1 + n) latents: [uc, c, uc, c, ...].
        context = face_tokens.repeat(images, 1, 1)
        features = self.reference_net(batch, 0, encoder_hidden_states=context)
        rounded = {k: v.to(torch.float16).to(v.dtype) for k, v in features.attention.items()}
        ref_rows = [0, images]
        motion_rows = [r for row in (0, 1) for r in range(row * images + 1, (row + 1) * images)]
        reference = ReferenceFeatures({k: v[ref_rows] for k, v in rounded.items()}, {})
        motion_features = MotionFeatures.from_attention_tokens(
            ReferenceFeatures({k: v[motion_rows] for k, v in rounded.items()}, features.layers),
            num_frames=motion,
        )
        return reference, motion_features

    # -- the loop ------------------------------------------------------------------------
    def denoise_clip(
        self,
        latents: torch.Tensor,
        *,
        reference: Any,
        motion: Any,
        face_tokens: torch.Tensor,
        face_features: torch.Tensor,
        audio_tokens: torch.Tensor,
        masks: AudioMasks,
        num_inference_steps: int,
        guidance_scale: float,
        clip_index: int = 0,
        on_step: StepCallback | None = None,
    ) -> torch.Tensor:
        """Denoise one clip's noise ``(1, c, f, h, w)`` to its final latents."""
        frames = latents.shape[2]
        # Hallo's quirk: its bank of reference tokens (one per guidance row) is repeated with
        # `.repeat(1, f, 1, 1)` on a 3-D tensor, which tiles the rows over the 2f frames of
        # the batch: frame j of row r reads reference row (r f + j) mod 2.
        per_frame = [(row * frames + j) % 2 for row in range(2) for j in range(frames)]
        reference = type(reference)({k: v[per_frame] for k, v in reference.attention.items()}, {})
        conditions = self.backbone.prepare_conditions(
            2,
            frames,
            reference_features=reference,
            audio_tokens=audio_tokens,
            motion_features=motion,
            encoder_hidden_states=face_tokens,
            reference_rows=[1],
            audio_masks=masks,
            dtype=latents.dtype,
        )
        self.scheduler.set_timesteps(num_inference_steps, device=latents.device)
        for step, t in enumerate(self.scheduler.timesteps):
            model_input = self.scheduler.scale_model_input(torch.cat([latents, latents]), t)
            prediction = self.backbone(
                model_input, t, conditions=conditions, face_features=face_features
            )
            uncond, cond = prediction.chunk(2)
            guided = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(guided, t, latents).prev_sample
            if on_step is not None:
                on_step(clip_index, step, int(t), prediction, latents)
        return latents

    def generate(
        self,
        conditions: HalloConditions,
        *,
        num_frames: int = 16,
        num_motion_frames: int = 2,
        num_inference_steps: int = 40,
        guidance_scale: float = 3.5,
        generator: torch.Generator | None = None,
        initial_latents: Sequence[torch.Tensor] | None = None,
        on_step: StepCallback | None = None,
        start_clip: int = 0,
        motion_frames: torch.Tensor | None = None,
    ) -> Iterator[HalloClip]:
        """Generate clip after clip (a generator: memory stays one clip).

        Parameters
        ----------
        conditions
            The precomputed conditions.
        num_frames
            Frames per clip ``f`` (Hallo: 16).
        num_motion_frames
            Motion frames ``n`` (Hallo: 2).
        num_inference_steps
            DDIM steps (Hallo: 40).
        guidance_scale
            Classifier-free guidance scale (Hallo: 3.5).
        generator
            Draws each clip's noise ``(1, c, f, h, w)`` in turn on the CPU (Hallo: one
            ``torch.manual_seed(42)`` generator for all clips).
        initial_latents
            Instead of ``generator``: each clip's noise.
        on_step
            Called after every step (see :data:`StepCallback`).
        start_clip
            The first clip to generate (continue a generation: give the previous clip's
            last frames as ``motion_frames``); ``initial_latents`` is indexed by clip.
        motion_frames
            ``(n, 3, H, W)`` in ``[0, 1]``: the frames before ``start_clip`` (default: the
            portrait, as for clip 0).

        Yields
        ------
        HalloClip
        """
        windows = conditions.audio_windows
        count = _window_count(windows)
        shape_ok = isinstance(windows, LazyAudioWindows) or windows.ndim == 4
        if not shape_ok or count == 0 or count % num_frames:
            shape = count if isinstance(windows, LazyAudioWindows) else tuple(windows.shape)
            raise InputError(
                f"HalloSampler: audio_windows must be (N, 2m+1, layers, dim) with N a positive "
                f"multiple of num_frames={num_frames}, got {shape}; pad the audio to whole "
                "clips (Hallo's padding)"
            )
        image = conditions.reference_image.to(device=self.device, dtype=self.dtype)
        if image.ndim != 3 or image.shape[0] != 3:
            raise InputError(
                f"HalloSampler: reference_image must be (3, H, W) in [-1, 1], got {tuple(image.shape)}"
            )
        clips = count // num_frames
        if not 0 <= start_clip < clips:
            raise InputError(f"HalloSampler: start_clip={start_clip} outside the {clips} clips")
        if initial_latents is not None and len(initial_latents) < clips:
            raise InputError(
                f"HalloSampler: {len(initial_latents)} initial latents for {clips} clips"
            )
        tokens = self.face_tokens(conditions.face_embedding)
        face = self.face_features(conditions.face_region)
        masks = conditions.masks.to(self.device, self.dtype)
        factor = 2 ** (len(self.vae.config["block_out_channels"]) - 1)
        shape = (1, int(self.backbone.config["in_channels"]), num_frames)
        size = (image.shape[1] // factor, image.shape[2] // factor)
        motion_pixels = image[None].expand(num_motion_frames, -1, -1, -1)
        if motion_frames is not None:
            if tuple(motion_frames.shape) != (num_motion_frames, *image.shape):
                raise InputError(
                    f"HalloSampler: motion_frames must be (n={num_motion_frames}, "
                    f"{', '.join(map(str, image.shape))}) in [0, 1], got {tuple(motion_frames.shape)}"
                )
            motion_pixels = motion_frames.to(device=self.device, dtype=self.dtype) * 2.0 - 1.0
        for index in range(start_clip, clips):
            if initial_latents is not None:
                noise = initial_latents[index].to(device=self.device, dtype=self.dtype)
            else:
                noise = torch.randn(*shape, *size, generator=generator, dtype=torch.float32)
                noise = noise.to(device=self.device, dtype=self.dtype)
            pixels = torch.cat([image[None], motion_pixels])
            reference, motion = self.reference_pass(pixels, tokens)
            clip_windows = _clip_windows(windows, index * num_frames, (index + 1) * num_frames)
            latents = self.denoise_clip(
                noise * float(self.scheduler.init_noise_sigma),
                reference=reference,
                motion=motion,
                face_tokens=tokens,
                face_features=face,
                audio_tokens=self.audio_tokens(clip_windows),
                masks=masks,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                clip_index=index,
                on_step=on_step,
            )
            video = self.decode(latents)
            # The next clip's motion frames: this clip's last decoded frames, in [-1, 1].
            last = video[0, :, -num_motion_frames:]
            motion_pixels = rearrange(last, "c n h w -> n c h w").to(self.dtype) * 2.0 - 1.0
            yield HalloClip(index=index, video=video, latents=latents)
