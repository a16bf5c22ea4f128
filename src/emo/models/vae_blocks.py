"""Building blocks of the Stable Diffusion VAE: encoder, decoder, attention, posterior.

:class:`~emo.models.vae.AutoencoderKL` assembles them; parameter names follow the
diffusers ``AutoencoderKL`` layout (``encoder.down_blocks.0.resnets.0.norm1.weight``, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from emo.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D

__all__ = ["DiagonalGaussian", "VAEAttention", "VAEDecoder", "VAEEncoder"]


class DiagonalGaussian:
    """A diagonal Gaussian over latents, as the VAE encoder predicts it.

    Parameters
    ----------
    parameters
        Mean and log-variance stacked on the channel axis:
        ``(b, 2 * c, h, w)`` or ``(b, 2 * c, f, h, w)``.

    Attributes
    ----------
    mean
        ``(b, c, ...)``.
    logvar
        ``(b, c, ...)``, clamped to ``[-30, 20]`` as in Stable Diffusion.
    std
        ``exp(logvar / 2)``.
    var
        ``exp(logvar)``.
    """

    def __init__(self, parameters: torch.Tensor) -> None:
        self.parameters = parameters
        mean, logvar = torch.chunk(parameters, 2, dim=1)
        self.mean = mean
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``mean + std * eps`` with ``eps ~ N(0, I)`` from ``generator``.

        Parameters
        ----------
        generator
            The source of randomness; ``None`` uses torch's global generator.
            The noise is drawn in float32 on the generator's device, so a seed
            gives the same latents on CPU and GPU up to the dtype cast.

        Returns
        -------
        torch.Tensor
            ``(b, c, ...)``, same dtype and device as :attr:`mean`.
        """
        device = self.mean.device
        if generator is not None and generator.device.type != device.type:
            # Draw where the generator lives (e.g. a CPU generator for a CUDA model), then move.
            device = generator.device
        noise = torch.randn(
            self.mean.shape, generator=generator, device=device, dtype=torch.float32
        )
        return self.mean + self.std * noise.to(device=self.mean.device, dtype=self.mean.dtype)

    def mode(self) -> torch.Tensor:
        """The most likely latent, i.e. :attr:`mean` ``(b, c, ...)``."""
        return self.mean

    def kl(self, other: DiagonalGaussian | None = None) -> torch.Tensor:
        """KL divergence to ``other`` (default: the standard normal), summed per sample.

        Returns
        -------
        torch.Tensor
            ``(b,)``.
        """
        dims = list(range(1, self.mean.ndim))
        if other is None:
            return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=dims)
        return 0.5 * torch.sum(
            (self.mean - other.mean).pow(2) / other.var
            + self.var / other.var
            - 1.0
            - self.logvar
            + other.logvar,
            dim=dims,
        )

    def nll(self, sample: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``sample`` ``(b, c, ...)``, summed per sample ``(b,)``."""
        dims = list(range(1, self.mean.ndim))
        return 0.5 * torch.sum(
            math.log(2.0 * math.pi) + self.logvar + (sample - self.mean).pow(2) / self.var,
            dim=dims,
        )


class VAEAttention(nn.Module):
    """Single-head spatial self-attention with a GroupNorm and a residual, as in the SD VAE.

    Parameters
    ----------
    channels
        Channels ``c`` of the feature map (also the head width).
    groups
        Groups of ``group_norm``.
    eps
        Epsilon of ``group_norm``.
    """

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = channels
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps, affine=True)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over all ``h * w`` positions.

        Parameters
        ----------
        x
            ``(b, c, h, w)``.

        Returns
        -------
        torch.Tensor
            ``(b, c, h, w)``.
        """
        height, width = x.shape[-2:]
        h = rearrange(self.group_norm(x), "b c h w -> b (h w) c")
        q = self.to_q(h)[:, None]
        k = self.to_k(h)[:, None]
        v = self.to_v(h)[:, None]
        h = F.scaled_dot_product_attention(q, k, v)[:, 0]
        for layer in self.to_out:
            h = layer(h)
        out: torch.Tensor = x + rearrange(h, "b (h w) c -> b c h w", h=height, w=width)
        return out


class _MidBlock(nn.Module):
    """Resnet, optional attention, resnet (``resnets.0``, ``attentions.0``, ``resnets.1``)."""

    def __init__(self, channels: int, groups: int, add_attention: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                ResnetBlock2D(channels, channels, temb_channels=None, groups=groups, eps=1e-6)
                for _ in range(2)
            ]
        )
        self.attentions = nn.ModuleList(
            [VAEAttention(channels, groups=groups, eps=1e-6)] if add_attention else []
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attention in self.attentions:
            x = attention(x)
        out: torch.Tensor = self.resnets[1](x)
        return out


def _resnet_stack(in_channels: int, out_channels: int, layers: int, groups: int) -> nn.ModuleList:
    """``layers`` time-free resnets, the first one changing the channel count."""
    return nn.ModuleList(
        [
            ResnetBlock2D(
                in_channels if i == 0 else out_channels,
                out_channels,
                temb_channels=None,
                groups=groups,
                eps=1e-6,
            )
            for i in range(layers)
        ]
    )


class _DownEncoderBlock(nn.Module):
    """``resnets.*`` then an optional stride-2 ``downsamplers.0`` (right/bottom padded)."""

    def __init__(
        self, in_channels: int, out_channels: int, layers: int, groups: int, downsample: bool
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(in_channels, out_channels, layers, groups)
        self.downsamplers = (
            nn.ModuleList([Downsample2D(out_channels, out_channels, padding=0)])
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        if self.downsamplers is not None:
            for sampler in self.downsamplers:
                x = sampler(x)
        return x


class _UpDecoderBlock(nn.Module):
    """``resnets.*`` then an optional nearest-x2 ``upsamplers.0``."""

    def __init__(
        self, in_channels: int, out_channels: int, layers: int, groups: int, upsample: bool
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(in_channels, out_channels, layers, groups)
        self.upsamplers = (
            nn.ModuleList([Upsample2D(out_channels, out_channels)]) if upsample else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        if self.upsamplers is not None:
            for sampler in self.upsamplers:
                x = sampler(x)
        return x


def _run(block: nn.Module, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
    if use_checkpoint and torch.is_grad_enabled() and x.requires_grad:
        out: torch.Tensor = checkpoint(block, x, use_reentrant=False)
        return out
    result: torch.Tensor = block(x)
    return result


class VAEEncoder(nn.Module):
    """Image ``(b, c_in, h, w)`` -> Gaussian parameters ``(b, 2 * latent, h / s, w / s)``.

    ``s = 2 ** (len(block_out_channels) - 1)``. Parameter names: ``conv_in``,
    ``down_blocks.N.{resnets.M, downsamplers.0.conv}``,
    ``mid_block.{resnets, attentions.0}``, ``conv_norm_out``, ``conv_out``.

    Parameters
    ----------
    in_channels
        Image channels.
    latent_channels
        Latent channels (the output has twice as many: mean and log-variance).
    block_out_channels
        Channels of each resolution level.
    layers_per_block
        Resnets per level.
    norm_num_groups
        GroupNorm groups.
    mid_block_add_attention
        Whether the mid block has its attention layer.
    """

    def __init__(
        self,
        in_channels: int,
        latent_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        norm_num_groups: int,
        mid_block_add_attention: bool = True,
    ) -> None:
        super().__init__()
        self.gradient_checkpointing = False
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        blocks = []
        previous = block_out_channels[0]
        for i, channels in enumerate(block_out_channels):
            blocks.append(
                _DownEncoderBlock(
                    previous,
                    channels,
                    layers_per_block,
                    norm_num_groups,
                    downsample=i < len(block_out_channels) - 1,
                )
            )
            previous = channels
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = _MidBlock(block_out_channels[-1], norm_num_groups, mid_block_add_attention)
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[-1], 2 * latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``(b, c_in, h, w)`` to ``(b, 2 * latent, h / s, w / s)``."""
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = _run(block, x, self.gradient_checkpointing)
        x = _run(self.mid_block, x, self.gradient_checkpointing)
        out: torch.Tensor = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return out


class VAEDecoder(nn.Module):
    """Latents ``(b, latent, h, w)`` -> image ``(b, c_out, h * s, w * s)``.

    Parameter names: ``conv_in``, ``mid_block.*``,
    ``up_blocks.N.{resnets.M, upsamplers.0.conv}`` (``up_blocks.0`` is the
    lowest resolution), ``conv_norm_out``, ``conv_out``.

    Parameters
    ----------
    out_channels
        Image channels.
    latent_channels
        Latent channels.
    block_out_channels
        Channels of each level, listed from the image side (as in the encoder).
    layers_per_block
        Each up block has ``layers_per_block + 1`` resnets.
    norm_num_groups
        GroupNorm groups.
    mid_block_add_attention
        Whether the mid block has its attention layer.
    """

    def __init__(
        self,
        out_channels: int,
        latent_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        norm_num_groups: int,
        mid_block_add_attention: bool = True,
    ) -> None:
        super().__init__()
        self.gradient_checkpointing = False
        reversed_channels = list(reversed(block_out_channels))
        self.conv_in = nn.Conv2d(latent_channels, reversed_channels[0], kernel_size=3, padding=1)
        self.mid_block = _MidBlock(reversed_channels[0], norm_num_groups, mid_block_add_attention)
        blocks = []
        previous = reversed_channels[0]
        for i, channels in enumerate(reversed_channels):
            blocks.append(
                _UpDecoderBlock(
                    previous,
                    channels,
                    layers_per_block + 1,
                    norm_num_groups,
                    upsample=i < len(reversed_channels) - 1,
                )
            )
            previous = channels
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``(b, latent, h, w)`` to ``(b, c_out, h * s, w * s)``."""
        x = self.conv_in(z)
        x = _run(self.mid_block, x, self.gradient_checkpointing)
        for block in self.up_blocks:
            x = _run(block, x, self.gradient_checkpointing)
        out: torch.Tensor = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return out
