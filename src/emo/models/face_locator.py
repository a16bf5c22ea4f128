"""FaceLocator: encodes the face-region mask to latent resolution.

EMO tells the Backbone *where* the face should be with a light convolutional
encoder of the face-region mask; its output is added to the noisy latents. The
last convolution starts at zero, so a fresh FaceLocator changes nothing.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.modeling import ModelMixin
from emo.models._checks import positive_ints

__all__ = ["FaceLocator"]


class FaceLocator(ModelMixin):
    """Strided convolutions from a mask ``(.., h, w)`` to latent features ``(.., h/8, w/8)``.

    ``conv_in`` (3x3) -> for each pair of consecutive widths a 3x3 convolution and a
    3x3 stride-2 convolution (``blocks``), SiLU after each -> ``conv_out`` (3x3,
    zero-initialised). The spatial size shrinks by ``2 ** (len(block_out_channels) - 1)``
    (8 by default, the VAE factor).

    Parameters
    ----------
    in_channels
        Mask channels (1 for a binary face-region mask).
    out_channels
        Output channels, the latent channels (4 for Stable Diffusion 1.5).
    block_out_channels
        Widths of the stages; each step between two widths halves the resolution.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 4,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128),
    ) -> None:
        super().__init__()
        positive_ints(
            "FaceLocator",
            in_channels=in_channels,
            out_channels=out_channels,
            block_out_channels=list(block_out_channels)
            if isinstance(block_out_channels, (list, tuple))
            else block_out_channels,
        )
        widths = tuple(int(c) for c in block_out_channels)
        if in_channels <= 0 or out_channels <= 0 or not widths or min(widths) <= 0:
            raise ConfigError(
                "FaceLocator: in_channels, out_channels and block_out_channels must be positive, "
                f"got {in_channels}, {out_channels}, {block_out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downscale_factor = 2 ** (len(widths) - 1)
        self.conv_in = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1)
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2))
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(widths[-1], out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)  # type: ignore[arg-type]

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """Encode a mask (video or image layout).

        Parameters
        ----------
        mask
            ``(b, c, f, h, w)`` or ``(b, c, h, w)``, values in ``[0, 1]`` (bool and
            integer masks are converted; an integer mask is read as 0/1).
            ``h`` and ``w`` must be divisible by :attr:`downscale_factor`.

        Returns
        -------
        torch.Tensor
            ``(b, out_channels, f, h/8, w/8)`` or ``(b, out_channels, h/8, w/8)``, in
            the dtype of the weights.

        Raises
        ------
        InputError
            On a wrong rank, channel count or a size not divisible by the factor.
        """
        if not isinstance(mask, torch.Tensor) or mask.ndim not in (4, 5):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise InputError(
                f"FaceLocator: mask must be (b, c, f, h, w) or (b, c, h, w), got {shape}"
            )
        if mask.shape[1] != self.in_channels:
            raise InputError(
                f"FaceLocator: mask has {mask.shape[1]} channels, expected {self.in_channels} "
                f"(shape {tuple(mask.shape)}, channels on axis 1)"
            )
        h, w = mask.shape[-2:]
        factor = self.downscale_factor
        if h % factor or w % factor or h == 0 or w == 0:
            raise InputError(
                f"FaceLocator: mask size {h}x{w} must be a non-zero multiple of {factor}; "
                "resize the image/mask to a multiple of 8 first"
            )
        weight = self.conv_in.weight
        if mask.is_meta and not weight.is_meta:
            raise InputError("FaceLocator: mask is on the meta device (no data); pass a real mask")
        x = mask.to(device=weight.device, dtype=weight.dtype)
        video = x.ndim == 5
        b = x.shape[0]
        if video:
            x = rearrange(x, "b c f h w -> (b f) c h w")
        x = F.silu(self.conv_in(x))
        for conv in self.blocks:
            x = F.silu(conv(x))
        out: torch.Tensor = self.conv_out(x)
        if video:
            out = rearrange(out, "(b f) c h w -> b c f h w", b=b)
        return out
