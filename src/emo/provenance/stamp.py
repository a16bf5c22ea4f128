"""What the pipeline does to every generation: mark the frames, label the file."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emo._version import __version__
from emo.errors import InputError
from emo.provenance.label import provenance_label
from emo.provenance.payload import Payload, video_id_from
from emo.provenance.watermark import Watermarker

__all__ = ["GenerationStamp"]


class GenerationStamp:
    """The provenance of one generation: its payload, the marker and the label.

    Parameters
    ----------
    watermark
        ``True`` (emo's default key), ``False`` (no mark: the user's responsibility; the
        label stays and says ``watermark=none``) or a :class:`Watermarker` (another key
        or strength).
    video_id
        The per-video id the mark carries.
    """

    def __init__(self, watermark: bool | Watermarker, video_id: int) -> None:
        if isinstance(watermark, Watermarker):
            self.marker: Watermarker | None = watermark
        elif watermark is True or watermark is False:
            self.marker = Watermarker() if watermark else None
        else:
            raise InputError(
                f"watermark must be True, False or an emo.provenance.Watermarker, got {watermark!r}"
            )
        self.payload = Payload(version=__version__, video_id=video_id)
        self._tile: torch.Tensor | None = None

    @classmethod
    def for_generation(
        cls,
        watermark: bool | Watermarker,
        *,
        portrait: np.ndarray,
        waveform: torch.Tensor,
        seed: int | None,
        settings: Any,
    ) -> GenerationStamp:
        """A stamp whose id hashes the inputs and the seed: same inputs and seed, same id."""
        video_id = video_id_from(
            np.ascontiguousarray(portrait).tobytes(),
            waveform.detach().cpu().contiguous().numpy().tobytes(),
            -1 if seed is None else int(seed),
            repr(settings),
        )
        return cls(watermark, video_id)

    @property
    def label(self) -> dict[str, str]:
        """The tags for the container (see :func:`~emo.provenance.label.provenance_label`)."""
        return provenance_label(watermark=self.marker is not None, video_id=self.payload.video_id)

    def mark(self, frames: torch.Tensor) -> torch.Tensor:
        """Watermark uint8 frames ``(f, h, w, 3)`` (unchanged when the mark is off)."""
        if self.marker is None:
            return frames
        if self._tile is None:  # one tile for the whole video
            self._tile = self.marker.tile(self.payload)
        return self.marker.embed(frames, self.payload, tile=self._tile)

    def label_session(self, session: Any) -> None:
        """Give a writer session the label, if it takes one (emo's writers all do)."""
        setter = getattr(session, "set_metadata", None)
        if callable(setter):
            setter(self.label)
