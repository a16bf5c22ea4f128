"""The EMO denoiser: a noisy clip + its conditions -> the network's prediction.

One module holds the conditioning wiring that inference and training share:
how the reference image, the motion frames, the audio, the face region and the
head speed reach the Backbone, and what a *dropped* condition is:

- no reference: the ReferenceNet sees an all-zero reference latent;
- no audio: the audio tokens are all zero;
- no motion (the first clip of a video): zero motion feature maps at every temporal
  layer, as the paper has it for the first clip (and as the pipeline's default
  ``first_clip_motion="zeros"`` generates it).

:class:`~emo.pipelines.emo_pipeline.EMOPipeline` builds its guidance branches
("reference only", "neither") with these very functions, and the trainer's
condition dropout uses them too, so the unconditional inputs at inference are
exactly those the model saw when a condition was dropped in training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from emo.models.conditions import BackboneConditions, ReferenceKeyValues
    from emo.models.reference_net import MotionFeatures, ReferenceFeatures

__all__ = ["EMODenoiser", "drop_rows"]


def drop_rows(tensor: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
    """Zero the samples of ``tensor`` whose ``drop`` flag is set (the "dropped condition" input).

    Parameters
    ----------
    tensor
        ``(b, ...)``.
    drop
        bool ``(b,)``, or ``None`` (nothing dropped).

    Returns
    -------
    torch.Tensor
        Same shape; rows with ``drop`` set are zeros. Gradients flow through the kept rows.
    """
    if drop is None:
        return tensor
    keep = (~drop.to(device=tensor.device, dtype=torch.bool)).to(tensor.dtype)
    return tensor * keep.reshape(-1, *([1] * (tensor.ndim - 1)))


class EMODenoiser(nn.Module):
    """The trainable networks of EMO and the conditioning wiring between them.

    Parameters
    ----------
    reference_net
        :class:`~emo.models.reference_net.ReferenceNet`.
    backbone
        :class:`~emo.models.backbone.Backbone`.
    face_locator
        :class:`~emo.models.face_locator.FaceLocator`.
    audio_projection
        :class:`~emo.models.audio_projection.AudioProjection`.

    Notes
    -----
    The submodules are the pipeline's own objects (not copies): training a
    denoiser trains the pipeline that shares them.
    """

    def __init__(
        self, reference_net: Any, backbone: Any, face_locator: Any, audio_projection: Any
    ) -> None:
        super().__init__()
        self.reference_net = reference_net
        self.backbone = backbone
        self.face_locator = face_locator
        self.audio_projection = audio_projection

    @property
    def audio_context(self) -> int:
        """Context frames ``m`` on each side of a frame's audio window."""
        return int(self.audio_projection.config["context_frames"])

    # -- conditions ----------------------------------------------------------------------
    def reference_features(
        self, reference_latent: torch.Tensor, drop: torch.Tensor | None = None
    ) -> ReferenceFeatures:
        """ReferenceNet features of the reference image.

        Parameters
        ----------
        reference_latent
            Scaled VAE latent of the reference image, ``(b, c, h, w)``.
        drop
            bool ``(b,)``: samples whose reference is dropped (they see a zero latent).
        """
        latent = drop_rows(reference_latent, drop)
        timestep = torch.zeros(latent.shape[0], device=latent.device, dtype=torch.long)
        features: ReferenceFeatures = self.reference_net(latent, timestep)
        return features

    def motion_features(
        self, motion_latents: torch.Tensor, drop: torch.Tensor | None = None
    ) -> MotionFeatures:
        """ReferenceNet features of the motion frames, ``(b, c, n, h, w)`` per layer.

        Parameters
        ----------
        motion_latents
            Scaled latents of the ``n`` frames before the clip, ``(b, c, n, h, w)``.
        drop
            bool ``(b,)``: samples without previous frames (the first clip of a video);
            their features are zero maps (the paper's first clip).
        """
        features: MotionFeatures = self.reference_net.motion_features(motion_latents)
        if drop is None:
            return features
        return type(features)({k: drop_rows(v, drop) for k, v in features.layers.items()})

    def audio_tokens(
        self, audio_window: torch.Tensor, drop: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Audio tokens of a clip.

        Parameters
        ----------
        audio_window
            Audio-encoder features ``(b, f + 2m, layers, dim)``: the clip's frames
            with ``m`` context frames on each side.
        drop
            bool ``(b,)``: samples whose audio is dropped (all-zero tokens).

        Returns
        -------
        torch.Tensor
            ``(b, f, k, d)``.
        """
        dtype = next(self.audio_projection.parameters()).dtype
        tokens: torch.Tensor = self.audio_projection(audio_window.to(dtype), padded=True)
        return drop_rows(tokens, drop)

    def face_features(self, face_mask: torch.Tensor) -> torch.Tensor:
        """FaceLocator features of the face region, ``(b, 1, H, W)`` -> ``(b, c, 1, h, w)``.

        The region is the same for every frame of a clip, so one pass serves all
        frames (broadcast along time).
        """
        dtype = next(self.face_locator.parameters()).dtype
        features: torch.Tensor = self.face_locator(face_mask.to(dtype)[:, :, None])
        return features

    # -- prediction ----------------------------------------------------------------------
    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        *,
        face: torch.Tensor,
        reference: ReferenceFeatures | ReferenceKeyValues | None = None,
        audio_tokens: torch.Tensor | None = None,
        motion: MotionFeatures | None = None,
        speed: torch.Tensor | None = None,
        speed_fps: float | None = None,
        conditions: BackboneConditions | None = None,
    ) -> torch.Tensor:
        """One Backbone pass from prepared conditions.

        Parameters
        ----------
        noisy
            The (scheduler-scaled) noisy latents ``(b, c, f, h, w)``.
        timesteps
            ``(b,)``.
        face
            :meth:`face_features`, ``(b or 1, c, 1 or f, h, w)``; added to ``noisy``.
        reference
            :meth:`reference_features` (batch ``b`` or 1), or ``None``.
        audio_tokens
            :meth:`audio_tokens` ``(b or 1, f, k, d)``, or ``None`` (no audio layers: stage 1).
        motion
            :meth:`motion_features` (batch ``b`` or 1), or ``None``.
        speed
            Head speed ``(b or 1, f)`` degrees per frame, or ``(b or 1, f + 2m)`` with the
            speed window's ``m`` real context frames on each side; or ``None``.
        speed_fps
            Frame rate of ``speed``: it is rescaled to the speed layers' reference rate.
            ``None``: already at that rate.
        conditions
            The conditions prepared once by :meth:`Backbone.prepare_conditions
            <emo.models.Backbone.prepare_conditions>` instead of ``reference`` ..
            ``speed_fps`` (what the pipeline passes at every step).
        """
        prediction: torch.Tensor = self.backbone(
            noisy + face.to(noisy.dtype),
            timesteps,
            reference_features=reference,
            audio_tokens=audio_tokens,
            motion_features=motion,
            speed=speed,
            speed_fps=speed_fps,
            conditions=conditions,
        )
        return prediction

    def forward(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        *,
        reference_latent: torch.Tensor,
        face_mask: torch.Tensor,
        audio_window: torch.Tensor | None = None,
        motion_latents: torch.Tensor | None = None,
        speed: torch.Tensor | None = None,
        speed_fps: float | None = None,
        drop_reference: torch.Tensor | None = None,
        drop_audio: torch.Tensor | None = None,
        drop_motion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict from raw conditions in one call (what a training step runs).

        Parameters
        ----------
        noisy
            Noisy latents ``(b, c, f, h, w)``.
        timesteps
            ``(b,)`` training timesteps.
        reference_latent
            ``(b, c, h, w)``.
        face_mask
            ``(b, 1, H, W)`` in {0, 1}.
        audio_window
            ``(b, f + 2m, layers, dim)`` or ``None`` (stage 1).
        motion_latents
            ``(b, c, n, h, w)`` or ``None``.
        speed
            ``(b, f)`` (or ``(b, f + 2m)``) or ``None``.
        speed_fps
            Frame rate of ``speed`` (see :meth:`denoise`).
        drop_reference, drop_audio, drop_motion
            bool ``(b,)`` condition dropout (see the module notes), or ``None``.

        Returns
        -------
        torch.Tensor
            ``(b, c, f, h, w)``.
        """
        reference = self.reference_features(reference_latent, drop_reference)
        tokens = None if audio_window is None else self.audio_tokens(audio_window, drop_audio)
        motion = None
        if motion_latents is not None and motion_latents.shape[2] > 0:
            motion = self.motion_features(motion_latents, drop_motion)
        return self.denoise(
            noisy,
            timesteps,
            face=self.face_features(face_mask),
            reference=reference,
            audio_tokens=tokens,
            motion=motion,
            speed=speed,
            speed_fps=speed_fps,
        )
