"""FaceEmbeddingProjection: a face-recognition embedding -> a few context tokens.

Hallo feeds the identity of the portrait to the cross-attentions (``attn2``) of both
UNets as tokens: an ArcFace embedding (512 values, as insightface returns it) is
mapped by one linear layer to ``num_tokens`` tokens and layer-normalised. The
unconditional branch uses the projection of an all-zero embedding. Parameter names
follow Hallo's checkpoint (``imageproj.proj``, ``imageproj.norm``).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from emo.errors import InputError
from emo.modeling import ModelMixin
from emo.models._checks import positive_ints

__all__ = ["FaceEmbeddingProjection"]


class FaceEmbeddingProjection(ModelMixin):
    """``Linear(embedding_dim -> num_tokens * output_dim)``, split into tokens, LayerNorm.

    Parameters
    ----------
    embedding_dim
        Width of the face embedding (512 for insightface's ArcFace models).
    num_tokens
        Tokens per image.
    output_dim
        Token width, the ``cross_attention_dim`` of the UNets (768 for SD 1.5).
    """

    def __init__(
        self, embedding_dim: int = 512, num_tokens: int = 4, output_dim: int = 768
    ) -> None:
        super().__init__()
        positive_ints(
            "FaceEmbeddingProjection",
            embedding_dim=embedding_dim,
            num_tokens=num_tokens,
            output_dim=output_dim,
        )
        self.embedding_dim = embedding_dim
        self.num_tokens = num_tokens
        self.proj = nn.Linear(embedding_dim, num_tokens * output_dim)
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Project ``(b, embedding_dim)`` embeddings to ``(b, num_tokens, output_dim)`` tokens."""
        if (
            not isinstance(embedding, torch.Tensor)
            or embedding.ndim != 2
            or embedding.shape[1] != self.embedding_dim
        ):
            shape = tuple(embedding.shape) if isinstance(embedding, torch.Tensor) else embedding
            raise InputError(
                f"FaceEmbeddingProjection: embedding must be (b, {self.embedding_dim}), got "
                f"{shape}; pass the face-recognition embedding of the portrait (zeros for none)"
            )
        weight = self.proj.weight
        x = self.proj(embedding.to(device=weight.device, dtype=weight.dtype))
        out: torch.Tensor = self.norm(rearrange(x, "b (n c) -> b n c", n=self.num_tokens))
        return out
