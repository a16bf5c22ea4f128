"""AudioProjection: per-frame audio tokens from a window of audio-encoder features.

For video frame ``i`` EMO looks at the audio features of frames ``i-m .. i+m`` (the
sounds just before and after shape the mouth, too), over all encoder layers, and
maps them to a few tokens that the Backbone's audio cross-attention attends to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.modeling import ModelMixin
from emo.models._checks import check_input_tensor, positive_ints

__all__ = ["AudioProjection", "audio_context_window"]

_ACTIVATIONS = {"silu": F.silu, "relu": F.relu}


def audio_context_window(
    features: torch.Tensor, context_frames: int, *, padded: bool = False
) -> torch.Tensor:
    """Gather the ``2m+1`` frames around each frame (``m = context_frames``).

    Parameters
    ----------
    features
        Per-frame features ``(b, F, layers, dim)``.
    context_frames
        ``m``, frames of context on each side.
    padded
        ``False``: ``F = f`` and frames outside the clip repeat the edge frame.
        ``True``: ``F = f + 2m``, the input already carries ``m`` real context frames
        on each side, and windows are returned for the ``f`` inner frames only.

    Returns
    -------
    torch.Tensor
        ``(b, f, 2m+1, layers, dim)``; window slot ``m`` is the frame itself.

    Raises
    ------
    InputError
        If ``features`` is not 4-D, or (``padded``) has fewer than ``2m+1`` frames.
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise InputError(f"audio features must be (b, frames, layers, dim), got {shape}")
    if context_frames < 0:
        raise InputError(f"context_frames must be >= 0, got {context_frames}")
    m = context_frames
    total = features.shape[1]
    offsets = torch.arange(2 * m + 1, device=features.device)
    if padded:
        f = total - 2 * m
        if f < 1:
            raise InputError(
                f"padded audio features need at least 2m+1={2 * m + 1} frames (m={m} context "
                f"frames on each side), got {total}"
            )
        index = torch.arange(f, device=features.device)[:, None] + offsets[None]
    else:
        if total < 1:
            raise InputError("audio features hold no frames")
        index = torch.arange(total, device=features.device)[:, None] + offsets[None] - m
        index = index.clamp(0, total - 1)
    return features[:, index]


class AudioProjection(ModelMixin):
    """Map a ``±m``-frame window of multi-layer audio features to ``num_tokens`` tokens per frame.

    ``window -> flatten ((2m+1) * layers * dim) -> Linear -> act -> Linear -> act ->
    Linear (num_tokens * output_dim) -> LayerNorm`` per token (``act``: SiLU, or ReLU
    as in Hallo's audio projection).

    Parameters
    ----------
    feature_dim
        Channels ``dim`` of each encoder layer (768 for wav2vec2-base).
    num_layers
        Encoder layers ``layers`` the features stack (e.g. 13 for wav2vec2-base:
        the embeddings plus 12 transformer layers).
    context_frames
        ``m``: frames of context on each side (2 gives a 5-frame window).
    num_tokens
        Tokens per video frame.
    hidden_dim
        Width of the MLP.
    output_dim
        Token width, the cross-attention dim of the Backbone (768 for SD 1.5).
    activation
        ``"silu"`` (emo's models) or ``"relu"`` (Hallo's ``audioproj``).
    """

    def __init__(
        self,
        feature_dim: int,
        num_layers: int,
        context_frames: int = 2,
        num_tokens: int = 4,
        hidden_dim: int = 512,
        output_dim: int = 768,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(
                f"AudioProjection: activation must be one of {sorted(_ACTIVATIONS)}, got "
                f"{activation!r}"
            )
        self._activation = _ACTIVATIONS[activation]
        positive_ints(
            "AudioProjection",
            feature_dim=feature_dim,
            num_layers=num_layers,
            num_tokens=num_tokens,
            hidden_dim=hidden_dim,
            output_dim=output_dim,
        )
        if isinstance(context_frames, bool) or not isinstance(context_frames, int):
            raise ConfigError(
                f"AudioProjection: context_frames must be an int, got {context_frames!r}"
            )
        if min(feature_dim, num_layers, num_tokens, hidden_dim, output_dim) <= 0:
            raise ConfigError(
                "AudioProjection: feature_dim, num_layers, num_tokens, hidden_dim and output_dim "
                "must be positive"
            )
        if context_frames < 0:
            raise ConfigError(f"AudioProjection: context_frames={context_frames} must be >= 0")
        self.feature_dim = feature_dim
        self.num_layers = num_layers
        self.context_frames = context_frames
        self.num_tokens = num_tokens
        self.output_dim = output_dim
        in_dim = (2 * context_frames + 1) * num_layers * feature_dim
        self.proj1 = nn.Linear(in_dim, hidden_dim)
        self.proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.proj3 = nn.Linear(hidden_dim, num_tokens * output_dim)
        self.norm = nn.LayerNorm(output_dim)

    def _check(self, features: torch.Tensor) -> None:
        if not isinstance(features, torch.Tensor) or features.ndim != 4:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
            raise InputError(
                f"AudioProjection: features must be (b, frames, layers={self.num_layers}, "
                f"dim={self.feature_dim}), got {shape}"
            )
        check_input_tensor(
            "AudioProjection", "features", features, like=self.proj1.weight, layout="(b, f, l, d)"
        )
        if tuple(features.shape[2:]) != (self.num_layers, self.feature_dim):
            raise InputError(
                f"AudioProjection: features have (layers, dim) = {tuple(features.shape[2:])}, "
                f"expected ({self.num_layers}, {self.feature_dim}); was it built for another "
                "audio encoder?"
            )

    def window(self, features: torch.Tensor, padded: bool = False) -> torch.Tensor:
        """The per-frame context windows, see :func:`audio_context_window`.

        Parameters
        ----------
        features
            ``(b, f, layers, dim)``, or ``(b, f + 2m, layers, dim)`` with ``padded``.
        padded
            Whether ``features`` carries ``m`` real context frames on each side.

        Returns
        -------
        torch.Tensor
            ``(b, f, 2m+1, layers, dim)``.
        """
        self._check(features)
        return audio_context_window(features, self.context_frames, padded=padded)

    def forward(self, features: torch.Tensor, *, padded: bool = False) -> torch.Tensor:
        """Audio tokens for every video frame.

        Parameters
        ----------
        features
            Audio-encoder features aligned to video frames, ``(b, f, layers, dim)``;
            with ``padded=True`` ``(b, f + 2m, layers, dim)`` whose first and last
            ``m`` frames are context only (e.g. from the neighbouring clips).
        padded
            ``False``: windows at the clip edges repeat the edge frame.

        Returns
        -------
        torch.Tensor
            ``(b, f, num_tokens, output_dim)`` in the dtype of the weights.

        Raises
        ------
        InputError
            If the shape does not fit the configuration.
        """
        return self.project_windows(self.window(features, padded=padded))

    def project_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """Audio tokens of windows already gathered (e.g. over a whole track, as Hallo does).

        Parameters
        ----------
        windows
            ``(b, f, 2m+1, layers, dim)``, as :meth:`window` returns them.

        Returns
        -------
        torch.Tensor
            ``(b, f, num_tokens, output_dim)`` in the dtype of the weights.

        Raises
        ------
        InputError
            If the shape does not fit the configuration.
        """
        expected = (2 * self.context_frames + 1, self.num_layers, self.feature_dim)
        if (
            not isinstance(windows, torch.Tensor)
            or windows.ndim != 5
            or (tuple(windows.shape[2:]) != expected)
        ):
            shape = tuple(windows.shape) if isinstance(windows, torch.Tensor) else type(windows)
            raise InputError(
                f"AudioProjection: windows must be (b, f, {', '.join(map(str, expected))}), "
                f"got {shape}"
            )
        weight = self.proj1.weight
        x = rearrange(windows, "b f w l d -> b f (w l d)").to(
            device=weight.device, dtype=weight.dtype
        )
        x = self._activation(self.proj1(x))
        x = self._activation(self.proj2(x))
        tokens = rearrange(self.proj3(x), "b f (n c) -> b f n c", n=self.num_tokens)
        out: torch.Tensor = self.norm(tokens)
        return out
