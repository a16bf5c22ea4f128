"""Residual blocks and resamplers shared by the UNet family and the VAE.

Parameter names follow the Stable Diffusion 1.x checkpoint layout (``norm1``,
``conv1``, ``time_emb_proj``, ``norm2``, ``conv2``, ``conv_shortcut``; ``conv``
for the resamplers), so pretrained weights load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emo.models.layers import Conv2d

__all__ = ["Downsample2D", "ResnetBlock2D", "Upsample2D"]


class ResnetBlock2D(nn.Module):
    """A GroupNorm-SiLU-conv residual block with an optional time-embedding shift.

    Parameters
    ----------
    in_channels
        Channels of the input.
    out_channels
        Channels of the output (default: ``in_channels``). When it differs
        from ``in_channels`` a 1x1 ``conv_shortcut`` maps the residual.
    temb_channels
        Width of the time embedding; ``None`` builds no ``time_emb_proj``
        (as in the VAE).
    groups
        Groups of both GroupNorms.
    eps
        Epsilon of both GroupNorms.
    dropout
        Dropout probability before ``conv2``.
    output_scale_factor
        The sum ``residual + h`` is divided by this.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        temb_channels: int | None = 512,
        groups: int = 32,
        eps: float = 1e-6,
        dropout: float = 0.0,
        output_scale_factor: float = 1.0,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.time_emb_proj: nn.Linear | None = (
            nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        )
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.conv_shortcut: nn.Conv2d | None = (
            Conv2d(in_channels, out_channels, kernel_size=1)
            if in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        x
            Feature map ``(b, c_in, h, w)``.
        temb
            Time embedding ``(b, t)``, or ``None`` (no shift).

        Returns
        -------
        torch.Tensor
            ``(b, c_out, h, w)``.
        """
        h: torch.Tensor = self.conv1(F.silu(self.norm1(x)))
        if temb is not None and self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        residual: torch.Tensor = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        out = residual + h
        if self.output_scale_factor != 1.0:
            out = out / self.output_scale_factor
        return out


class Downsample2D(nn.Module):
    """Halve the spatial size with a stride-2 3x3 convolution ``conv``.

    Parameters
    ----------
    channels
        Input channels.
    out_channels
        Output channels (default: ``channels``).
    padding
        Convolution padding. ``0`` pads the input by one pixel on the right and
        bottom first, as the VAE encoder does.
    """

    def __init__(self, channels: int, out_channels: int | None = None, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = channels if out_channels is None else out_channels
        self.padding = padding
        self.conv = nn.Conv2d(channels, self.out_channels, kernel_size=3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downsample ``(b, c, h, w)`` to ``(b, c_out, ceil(h/2), ceil(w/2))``."""
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0)
        out: torch.Tensor = self.conv(x)
        return out


class Upsample2D(nn.Module):
    """Double the spatial size (nearest neighbour) and apply a 3x3 convolution ``conv``.

    Parameters
    ----------
    channels
        Input channels.
    out_channels
        Output channels (default: ``channels``).
    """

    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = channels if out_channels is None else out_channels
        self.conv = Conv2d(channels, self.out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Upsample ``(b, c, h, w)`` to ``(b, c_out, 2h, 2w)`` (or to ``output_size``)."""
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=output_size, mode="nearest")
        out: torch.Tensor = self.conv(x)
        return out
