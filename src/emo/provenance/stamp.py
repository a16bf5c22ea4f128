"""What the pipeline does to every generation: mark the frames, label the file, sign it (C2PA)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emo._version import __version__
from emo.errors import EMOWarning, InputError
from emo.provenance.label import provenance_label
from emo.provenance.payload import Payload, video_id_from
from emo.provenance.watermark import DEFAULT_KEY, Watermarker

if TYPE_CHECKING:
    from emo.provenance.signing import ContentSigner

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
    signer
        Signs the written file with a C2PA manifest (see :meth:`for_generation`), or
        ``None``: no Content Credentials.
    """

    def __init__(
        self,
        watermark: bool | Watermarker,
        video_id: int,
        *,
        signer: ContentSigner | None = None,
    ) -> None:
        if isinstance(watermark, Watermarker):
            self.marker: Watermarker | None = watermark
        elif watermark is True or watermark is False:
            self.marker = Watermarker() if watermark else None
        else:
            raise InputError(
                f"watermark must be True, False or an emo.provenance.Watermarker, got {watermark!r}"
            )
        self.payload = Payload(version=__version__, video_id=video_id)
        self.signer = signer
        self._tile: torch.Tensor | None = None

    @property
    def private_key(self) -> bool:
        """True when the mark uses a key other than emo's public default."""
        return self.marker is not None and self.marker.key != DEFAULT_KEY

    @classmethod
    def for_generation(
        cls,
        watermark: bool | Watermarker,
        *,
        portrait: np.ndarray,
        waveform: torch.Tensor,
        seed: int | None,
        settings: Any,
        content_credentials: Any = None,
        model_name: str | None = None,
        model_modules: Iterable[tuple[str, torch.nn.Module]] = (),
        inputs: Mapping[str, Any] | None = None,
    ) -> GenerationStamp:
        """A stamp whose id hashes the inputs and the seed: same inputs and seed, same id.

        Parameters
        ----------
        watermark
            See the class.
        portrait, waveform, seed, settings
            What the video id hashes (the prepared portrait and audio).
        content_credentials
            Whether and with which key to sign (see
            :func:`emo.provenance.signing.resolve_credentials`): ``None`` signs when
            ``EMO_C2PA_CERT`` and ``EMO_C2PA_KEY`` are set.
        model_name, model_modules
            The model as named by the user, and its networks (their weights are hashed
            for the manifest, only when signing).
        inputs
            The inputs by role as the user gave them (``{"portrait": path, "audio": path}``);
            only their SHA-256 goes into the manifest.

        Raises
        ------
        CredentialsError
            If signing is asked for but impossible (checked before any work).
        """
        video_id = video_id_from(
            np.ascontiguousarray(portrait).tobytes(),
            waveform.detach().cpu().contiguous().numpy().tobytes(),
            -1 if seed is None else int(seed),
            repr(settings),
        )
        stamp = cls(watermark, video_id)
        from emo.provenance.signing import resolve_credentials

        credentials = resolve_credentials(content_credentials)
        if credentials is not None:
            from emo.provenance.hashing import input_digest, weights_sha256
            from emo.provenance.manifest import GenerationFacts
            from emo.provenance.signing import ContentSigner

            facts = GenerationFacts(
                model_name=model_name or "unnamed model",
                model_sha256=weights_sha256(model_modules),
                inputs={role: input_digest(value) for role, value in (inputs or {}).items()},
                watermark=stamp.watermark_facts,
            )
            stamp.signer = ContentSigner(credentials, facts)
        return stamp

    @property
    def watermark_facts(self) -> dict[str, Any] | None:
        """The mark as the manifest records it (scheme, public or private key, video id), or ``None``."""
        if self.marker is None:
            return None
        return {
            "scheme": "emo-provenance-v1",
            "key": "private" if self.private_key else "public",
            "video_id": self.payload.video_id,
        }

    @property
    def label(self) -> dict[str, str]:
        """The tags for the container (see :func:`~emo.provenance.label.provenance_label`)."""
        return provenance_label(
            watermark=self.marker is not None,
            video_id=self.payload.video_id,
            private_key=self.private_key,
        )

    def mark(self, frames: torch.Tensor, *, upscale: float = 1.0) -> torch.Tensor:
        """Watermark uint8 frames ``(f, h, w, 3)`` (unchanged when the mark is off).

        ``upscale``: how many times the frames were enlarged after they were made
        (see :meth:`Watermarker.embed <emo.provenance.watermark.Watermarker.embed>`).
        """
        if self.marker is None:
            return frames
        if self._tile is None:  # one tile for the whole video
            self._tile = self.marker.tile(self.payload)
        return self.marker.embed(frames, self.payload, tile=self._tile, upscale=upscale)

    def label_session(self, session: Any) -> None:
        """Give a writer session the label and the C2PA signer, if it takes them.

        emo's file writers take both; the in-memory writer has no file to sign. A
        session that cannot sign gets the file written unsigned, with a warning.
        """
        setter = getattr(session, "set_metadata", None)
        if callable(setter):
            setter(self.label)
        if self.signer is None:
            return
        sign_with = getattr(session, "set_content_signer", None)
        if callable(sign_with):
            sign_with(self.signer)
        else:
            warnings.warn(
                f"the writer session {type(session).__name__} cannot sign files: the output "
                "has no C2PA Content Credentials (the watermark and label are written)",
                EMOWarning,
                stacklevel=2,
            )
