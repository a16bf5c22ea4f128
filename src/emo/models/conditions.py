"""Backbone conditions prepared once and reused by every denoising step.

Within one generation the reference image does not change, and within one clip
neither do the audio tokens, the motion frames' features or the head speed. A
denoising loop therefore prepares them once (:meth:`Backbone.project_reference
<emo.models.Backbone.project_reference>` per generation, :meth:`Backbone.prepare_conditions
<emo.models.Backbone.prepare_conditions>` per clip) and passes the result to every
step, which then only runs the network:

- the reference tokens of every reference-attention layer are projected to keys
  and values once (:class:`ReferenceKeyValues`), not at every step;
- the inputs are checked once (no host read of a tensor inside the step);
- the speed embedding is computed once;
- the rows of a batch of guidance branches are known (:meth:`BackboneConditions.select`
  gives one branch's conditions, as views, for guidance run branch by branch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from emo.models.attention import KeyValues
from emo.models.masked_audio import AudioMasks

__all__ = ["BackboneConditions", "ReferenceKeyValues"]


def _rows(tensor: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """``tensor[rows]`` along dim 0: a view for one row or a contiguous run, else a copy."""
    if tensor.shape[0] == 1:
        return tensor
    first = rows[0]
    if list(rows) == list(range(first, first + len(rows))):
        return tensor[first : first + len(rows)]
    return tensor.index_select(0, torch.tensor(list(rows), device=tensor.device))


def _select_layer(value: torch.Tensor | KeyValues, rows: Sequence[int]) -> torch.Tensor | KeyValues:
    if isinstance(value, torch.Tensor):
        return _rows(value, rows)
    return _rows(value[0], rows), _rows(value[1], rows)


@dataclass(frozen=True)
class ReferenceKeyValues:
    """The reference tokens of every reference-attention layer, projected to keys and values.

    Attributes
    ----------
    layers
        Per transformer-block path (the keys of :attr:`ReferenceFeatures.attention
        <emo.models.ReferenceFeatures.attention>`), the pair ``(keys, values)``, each
        ``(b_r, m, inner)``; ``b_r`` is 1 (shared by every sample) or the batch.
    """

    layers: Mapping[str, KeyValues] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Rows ``b_r`` of the keys and values (0 when empty)."""
        for keys, _ in self.layers.values():
            return int(keys.shape[0])
        return 0

    def select(self, rows: Sequence[int]) -> ReferenceKeyValues:
        """The keys and values of some rows, in that order (rows may repeat).

        Parameters
        ----------
        rows
            Row indices; a batch-1 object is returned as it is (it is shared).
        """
        return ReferenceKeyValues(
            {k: (_rows(a, rows), _rows(b, rows)) for k, (a, b) in self.layers.items()}
        )


@dataclass(frozen=True)
class BackboneConditions:
    """Everything a Backbone step needs besides the noisy latents and the timestep.

    Built by :meth:`Backbone.prepare_conditions <emo.models.Backbone.prepare_conditions>`,
    which checks the inputs; the attributes are in the layout the layers read.

    Attributes
    ----------
    batch
        Samples ``b`` the conditions are laid out for.
    frames
        Frames ``f`` per sample.
    dtype
        The dtype the tensors were cast to.
    reference
        Per reference-attention layer, its keys and values projected once (from
        :class:`ReferenceKeyValues`) or the reference tokens ``(b or 1, m, c)``
        themselves (projected by the layer at every call, as training needs for
        its gradients); ``None``: no reference attention.
    audio_tokens
        Audio tokens ``((b f), k, d_audio)``, or ``None``.
    audio_rows
        The samples whose audio tokens are not all zero; ``None``: all of them.
    motion
        Motion features per temporal-module path, ``(b or 1, c, n, h, w)``, or ``None``.
    speed_embedding
        Speed embedding ``(b or 1, f, d)``, or ``None``.
    context
        Context tokens of the cross-attentions ``attn2`` ``((b f), t, d)`` (Hallo's face
        tokens), or ``None``.
    reference_rows
        The samples whose self-attention reads the reference; ``None``: all of them.
    audio_masks
        The region masks of masked audio modules (rows ``(b f)`` or 1), or ``None``.
    """

    batch: int
    frames: int
    dtype: torch.dtype
    reference: Mapping[str, torch.Tensor | KeyValues] | None = None
    audio_tokens: torch.Tensor | None = None
    audio_rows: tuple[int, ...] | None = None
    motion: Mapping[str, torch.Tensor] | None = None
    speed_embedding: torch.Tensor | None = None
    context: torch.Tensor | None = None
    reference_rows: tuple[int, ...] | None = None
    audio_masks: AudioMasks | None = None

    def _per_frame_rows(self, tensor: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        """Select samples of a ``((b f), ...)`` tensor (a single shared row stays as it is)."""
        if tensor.shape[0] == 1:
            return tensor
        per_sample = tensor.reshape(self.batch, self.frames, *tensor.shape[1:])
        return _rows(per_sample, rows).reshape(-1, *tensor.shape[1:])

    def select(self, rows: Sequence[int]) -> BackboneConditions:
        """The conditions of some samples (e.g. one guidance branch), as views where possible.

        Parameters
        ----------
        rows
            Sample indices, in the order wanted.

        Returns
        -------
        BackboneConditions
            With ``batch == len(rows)``.
        """
        rows = [int(r) for r in rows]
        audio = None
        if self.audio_tokens is not None:
            per_sample = self.audio_tokens.reshape(
                self.batch, self.frames, *self.audio_tokens.shape[1:]
            )
            audio = _rows(per_sample, rows).reshape(-1, *self.audio_tokens.shape[1:])
        audio_rows = None
        if self.audio_rows is not None:
            audio_rows = tuple(j for j, r in enumerate(rows) if r in self.audio_rows)
        motion = None
        if self.motion is not None:
            motion = {k: _rows(v, rows) for k, v in self.motion.items()}
        speed = None if self.speed_embedding is None else _rows(self.speed_embedding, rows)
        context = None if self.context is None else self._per_frame_rows(self.context, rows)
        reference_rows = None
        if self.reference_rows is not None:
            reference_rows = tuple(j for j, r in enumerate(rows) if r in self.reference_rows)
        masks = None
        if self.audio_masks is not None:
            m = self.audio_masks
            masks = AudioMasks(
                [self._per_frame_rows(t, rows) for t in m.full],
                [self._per_frame_rows(t, rows) for t in m.face],
                [self._per_frame_rows(t, rows) for t in m.lip],
                m.weights,
            )
        return BackboneConditions(
            batch=len(rows),
            frames=self.frames,
            dtype=self.dtype,
            reference=None
            if self.reference is None
            else {k: _select_layer(v, rows) for k, v in self.reference.items()},
            audio_tokens=audio,
            audio_rows=audio_rows,
            motion=motion,
            speed_embedding=speed,
            context=context,
            reference_rows=reference_rows,
            audio_masks=masks,
        )
