"""``AutoencoderKL``: the Stable Diffusion VAE, for images and video clips.

The parameter names and shapes equal those of the diffusers ``AutoencoderKL``
(``encoder.down_blocks.0.resnets.0.norm1.weight``, ...), so the ``vae/`` folder
of any Stable Diffusion 1.x model loads as is (:meth:`AutoencoderKL.from_diffusers`),
and the VAE of an original single-file checkpoint loads as well
(:meth:`AutoencoderKL.from_single_file`); the reading and conversion live in
:mod:`emo.loaders.diffusers_vae` and :mod:`emo.loaders.single_file`.

Video tensors ``(b, c, f, h, w)`` are encoded and decoded frame by frame, in
slices of :attr:`AutoencoderKL.frame_slice_size` frames, so peak memory is
bounded by the slice and not by the clip length.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.modeling import LoadReport, ModelMixin
from emo.models._checks import positive_ints
from emo.models.sd15 import SD15_VAE_CONFIG
from emo.models.vae_blocks import DiagonalGaussian, VAEAttention, VAEDecoder, VAEEncoder

__all__ = [
    "AutoencoderKL",
    "DiagonalGaussian",
    "VAEAttention",
    "VAEDecoder",
    "VAEEncoder",
]


def __getattr__(name: str) -> Any:
    # Deprecated alias: the diffusers weight-name conversion moved to emo.loaders.
    if name == "convert_diffusers_vae_state_dict":
        warnings.warn(
            "emo.models.vae.convert_diffusers_vae_state_dict moved to emo.loaders.diffusers_vae; "
            "import it from there (the old name will be removed in a future release)",
            DeprecationWarning,
            stacklevel=2,
        )
        from emo.loaders.diffusers_vae import convert_diffusers_vae_state_dict

        return convert_diffusers_vae_state_dict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AutoencoderKL(ModelMixin):
    """The KL-regularised autoencoder of Stable Diffusion: image <-> latents, 8x smaller.

    Parameter names and shapes equal diffusers' ``AutoencoderKL``; the defaults
    are the Stable Diffusion 1.x VAE (83,653,863 parameters).

    Parameters
    ----------
    in_channels
        Image channels of the encoder input.
    out_channels
        Image channels of the decoder output.
    down_block_types
        One ``"DownEncoderBlock2D"`` per resolution level (the only type supported).
    up_block_types
        One ``"UpDecoderBlock2D"`` per level (the only type supported).
    block_out_channels
        Channels of each level, image side first.
    layers_per_block
        Resnets per encoder level (the decoder has one more per level).
    act_fn
        Activation; only ``"silu"``.
    latent_channels
        Latent channels ``c`` (4 for SD).
    norm_num_groups
        GroupNorm groups.
    sample_size
        Nominal image size the model was trained at (informational).
    scaling_factor
        Latents are multiplied by this after encoding (and divided before
        decoding) in :meth:`encode_to_latents` / :meth:`decode_latents`, so the
        diffusion model sees roughly unit-variance latents.
    use_quant_conv
        Apply the 1x1 ``quant_conv`` to the encoder output.
    use_post_quant_conv
        Apply the 1x1 ``post_quant_conv`` to the decoder input.
    mid_block_add_attention
        Whether both mid blocks have their attention layer.

    Attributes
    ----------
    frame_slice_size
        At most this many frames (images) go through the encoder or decoder at
        once; ``None`` processes everything at once. Default 8. Set it with
        :meth:`enable_slicing`.

    Examples
    --------
    >>> import torch
    >>> vae = AutoencoderKL(
    ...     down_block_types=("DownEncoderBlock2D",) * 2,
    ...     up_block_types=("UpDecoderBlock2D",) * 2,
    ...     block_out_channels=(32, 64),
    ...     norm_num_groups=8,
    ...     layers_per_block=1,
    ... )
    >>> video = torch.rand(1, 3, 5, 32, 32) * 2 - 1  # (b, c, f, h, w)
    >>> latents = vae.encode_to_latents(video, generator=torch.Generator().manual_seed(0))
    >>> latents.shape
    torch.Size([1, 4, 5, 16, 16])
    >>> vae.decode_latents(latents).shape
    torch.Size([1, 3, 5, 32, 32])
    """

    #: What the last checkpoint load matched (set by :meth:`from_diffusers` and
    #: :meth:`from_single_file`).
    load_report: LoadReport

    def __init__(
        self,
        in_channels: int = SD15_VAE_CONFIG["in_channels"],
        out_channels: int = SD15_VAE_CONFIG["out_channels"],
        down_block_types: tuple[str, ...] = SD15_VAE_CONFIG["down_block_types"],
        up_block_types: tuple[str, ...] = SD15_VAE_CONFIG["up_block_types"],
        block_out_channels: tuple[int, ...] = SD15_VAE_CONFIG["block_out_channels"],
        layers_per_block: int = SD15_VAE_CONFIG["layers_per_block"],
        act_fn: str = SD15_VAE_CONFIG["act_fn"],
        latent_channels: int = SD15_VAE_CONFIG["latent_channels"],
        norm_num_groups: int = SD15_VAE_CONFIG["norm_num_groups"],
        sample_size: int = SD15_VAE_CONFIG["sample_size"],
        scaling_factor: float = SD15_VAE_CONFIG["scaling_factor"],
        use_quant_conv: bool = SD15_VAE_CONFIG["use_quant_conv"],
        use_post_quant_conv: bool = SD15_VAE_CONFIG["use_post_quant_conv"],
        mid_block_add_attention: bool = True,
    ) -> None:
        super().__init__()
        positive_ints(
            "AutoencoderKL",
            in_channels=in_channels,
            out_channels=out_channels,
            block_out_channels=list(block_out_channels)
            if isinstance(block_out_channels, (list, tuple))
            else block_out_channels,
            layers_per_block=layers_per_block,
            latent_channels=latent_channels,
            norm_num_groups=norm_num_groups,
        )
        channels = tuple(int(c) for c in block_out_channels)
        if not channels:
            raise ConfigError("AutoencoderKL: block_out_channels must list at least one level")
        if len(down_block_types) != len(channels) or len(up_block_types) != len(channels):
            raise ConfigError(
                f"AutoencoderKL: down_block_types ({len(down_block_types)}), up_block_types "
                f"({len(up_block_types)}) and block_out_channels ({len(channels)}) must have "
                "one entry per level"
            )
        bad = sorted(
            {t for t in down_block_types if t != "DownEncoderBlock2D"}
            | {t for t in up_block_types if t != "UpDecoderBlock2D"}
        )
        if bad:
            raise ConfigError(
                f"AutoencoderKL: unsupported block types {bad}; only DownEncoderBlock2D and "
                "UpDecoderBlock2D (the Stable Diffusion VAE) are implemented"
            )
        if act_fn != "silu":
            raise ConfigError(f"AutoencoderKL: act_fn={act_fn!r} is not supported; use 'silu'")
        bad_groups = [c for c in channels if c % norm_num_groups]
        if bad_groups:
            raise ConfigError(
                f"AutoencoderKL: norm_num_groups={norm_num_groups} does not divide the channel "
                f"counts {bad_groups}; pick a divisor of every entry of block_out_channels"
            )
        self.encoder = VAEEncoder(
            in_channels,
            latent_channels,
            channels,
            layers_per_block,
            norm_num_groups,
            mid_block_add_attention,
        )
        self.decoder = VAEDecoder(
            out_channels,
            latent_channels,
            channels,
            layers_per_block,
            norm_num_groups,
            mid_block_add_attention,
        )
        self.quant_conv = (
            nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1) if use_quant_conv else None
        )
        self.post_quant_conv = (
            nn.Conv2d(latent_channels, latent_channels, 1) if use_post_quant_conv else None
        )
        self.in_channels = in_channels
        self.latent_channels = latent_channels
        self.scaling_factor = float(scaling_factor)
        self.downscale_factor = 2 ** (len(channels) - 1)
        self.frame_slice_size: int | None = 8

    # ------------------------------------------------------------------ switches

    def enable_slicing(self, frame_slice_size: int = 8) -> None:
        """Encode/decode at most ``frame_slice_size`` frames (or images) at a time."""
        if (
            isinstance(frame_slice_size, bool)
            or not isinstance(frame_slice_size, int)
            or frame_slice_size < 1
        ):
            raise InputError(f"frame_slice_size must be an int >= 1, got {frame_slice_size!r}")
        self.frame_slice_size = int(frame_slice_size)

    def disable_slicing(self) -> None:
        """Encode/decode all frames of a call at once (fastest, most memory)."""
        self.frame_slice_size = None

    @property
    def gradient_checkpointing(self) -> bool:
        """Whether encoder and decoder blocks recompute activations in the backward pass."""
        return bool(self.encoder.gradient_checkpointing)

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory in training: recompute block activations on backward."""
        self.encoder.gradient_checkpointing = True
        self.decoder.gradient_checkpointing = True

    def disable_gradient_checkpointing(self) -> None:
        """Keep block activations (the default)."""
        self.encoder.gradient_checkpointing = False
        self.decoder.gradient_checkpointing = False

    # ------------------------------------------------------------------ helpers

    def _check(self, x: torch.Tensor, channels: int, what: str, multiple: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"AutoencoderKL.{what} expects a torch.Tensor, got {type(x).__name__}")
        if x.ndim not in (4, 5):
            raise InputError(
                f"AutoencoderKL.{what} expects (b, c, h, w) or (b, c, f, h, w), got shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[1] != channels:
            raise InputError(
                f"AutoencoderKL.{what} expects {channels} channels on axis 1, got shape "
                f"{tuple(x.shape)}; video must be (b, c, f, h, w)"
            )
        if multiple > 1 and (x.shape[-1] % multiple or x.shape[-2] % multiple):
            raise InputError(
                f"AutoencoderKL.{what}: height and width {tuple(x.shape[-2:])} must be multiples "
                f"of {multiple}; crop or resize the input"
            )
        if not x.is_floating_point():
            raise InputError(
                f"AutoencoderKL.{what} expects a floating-point tensor in [-1, 1], got {x.dtype}"
            )
        device = self.device
        if x.device.type != device.type:
            raise InputError(
                f"AutoencoderKL.{what}: input is on {x.device} but the model is on {device}; "
                "move one of them"
            )
        return x.to(dtype=self.dtype)

    def _per_frame(
        self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """Apply ``fn`` to ``(n, c, h, w)`` batches of at most ``frame_slice_size`` frames."""
        video = x.ndim == 5
        batch = x.shape[0]
        frames = rearrange(x, "b c f h w -> (b f) c h w") if video else x
        size = self.frame_slice_size or frames.shape[0]
        if frames.shape[0] <= size:
            out = fn(frames)
        else:
            out = torch.cat([fn(chunk) for chunk in torch.split(frames, size)], dim=0)
        if video:
            result: torch.Tensor = rearrange(out, "(b f) c h w -> b c f h w", b=batch)
            return result
        return out

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        moments: torch.Tensor = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        out: torch.Tensor = self.decoder(z)
        return out

    # ------------------------------------------------------------------ API

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """Encode images or video frames to a Gaussian over latents.

        Parameters
        ----------
        x
            Images ``(b, c, h, w)`` or video ``(b, c, f, h, w)`` with values in
            ``[-1, 1]``; ``h`` and ``w`` multiples of 8 (for SD). Cast to the
            model's dtype.

        Returns
        -------
        DiagonalGaussian
            Parameters ``(b, 2 * latent, h / 8, w / 8)`` or
            ``(b, 2 * latent, f, h / 8, w / 8)`` (unscaled latents).

        Raises
        ------
        InputError
            On a wrong rank, channel count, size, dtype or device.
        """
        x = self._check(x, self.in_channels, "encode", self.downscale_factor)
        return DiagonalGaussian(self._per_frame(self._encode_frames, x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode (unscaled) latents to images or video frames.

        Parameters
        ----------
        z
            ``(b, latent, h, w)`` or ``(b, latent, f, h, w)``.

        Returns
        -------
        torch.Tensor
            ``(b, c, 8h, 8w)`` or ``(b, c, f, 8h, 8w)``, roughly in ``[-1, 1]``
            (not clamped).

        Raises
        ------
        InputError
            On a wrong rank, channel count, dtype or device.
        """
        z = self._check(z, self.latent_channels, "decode", 1)
        return self._per_frame(self._decode_frames, z)

    def forward(
        self,
        x: torch.Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Reconstruct ``x``: encode, take the mean (or a sample), decode.

        Parameters
        ----------
        x
            ``(b, c, h, w)`` or ``(b, c, f, h, w)`` in ``[-1, 1]``.
        sample_posterior
            Sample the latent (with ``generator``) instead of taking the mean.
        generator
            Randomness for the sample.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z)

    def encode_to_latents(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sample: bool = True,
    ) -> torch.Tensor:
        """Encode to the scaled latents a diffusion model works with.

        Parameters
        ----------
        x
            ``(b, c, h, w)`` or ``(b, c, f, h, w)`` in ``[-1, 1]``.
        generator
            Randomness for the posterior sample (``None``: torch's global generator).
        sample
            Sample the posterior (as Stable Diffusion does); ``False`` takes its mean.

        Returns
        -------
        torch.Tensor
            ``(b, latent, h / 8, w / 8)`` or ``(b, latent, f, h / 8, w / 8)``,
            multiplied by ``scaling_factor``.
        """
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents (divided by ``scaling_factor`` first) to images.

        Parameters
        ----------
        latents
            ``(b, latent, h, w)`` or ``(b, latent, f, h, w)``.

        Returns
        -------
        torch.Tensor
            ``(b, c, 8h, 8w)`` or ``(b, c, f, 8h, 8w)``, roughly in ``[-1, 1]``.
        """
        if not isinstance(latents, torch.Tensor):
            raise InputError(
                f"AutoencoderKL.decode_latents expects a torch.Tensor, got {type(latents).__name__}"
            )
        return self.decode(latents / self.scaling_factor)

    # ------------------------------------------------------------------ loading

    @classmethod
    def config_from_diffusers(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Translate a diffusers ``vae/config.json`` mapping into our ``__init__`` arguments.

        See :func:`emo.loaders.diffusers_vae.vae_config_from_diffusers`.

        Raises
        ------
        ConfigError
            If the config names a class other than ``AutoencoderKL``.
        """
        from emo.loaders.diffusers_vae import vae_config_from_diffusers

        return vae_config_from_diffusers(config, cls)

    @classmethod
    def from_diffusers(
        cls,
        folder: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        strict: bool = True,
    ) -> AutoencoderKL:
        """Load a diffusers-format VAE folder (``config.json`` + weights).

        Parameters
        ----------
        folder
            The ``vae/`` folder, or a Stable Diffusion pipeline folder holding one.
            Weights: ``diffusion_pytorch_model.safetensors`` (or ``.bin``, or the
            ``.fp16`` variants).
        dtype
            Cast the weights to this dtype (default: float32 as built).
        device
            Where to put the model.
        strict
            Raise on missing or unexpected keys; with ``False`` they are
            reported in an :class:`~emo.errors.EMOWarning` instead.

        Returns
        -------
        AutoencoderKL
            The model in eval mode; ``model.load_report`` holds the
            :class:`~emo.modeling.LoadReport`.

        Raises
        ------
        CheckpointError
            If the folder or its weights are missing, a tensor has the wrong
            shape, or (``strict``) keys do not match.
        ConfigError
            If ``config.json`` is unreadable or describes another model.
        """
        from emo.loaders.diffusers_vae import load_diffusers_vae

        return load_diffusers_vae(cls, folder, dtype=dtype, device=device, strict=strict)

    @classmethod
    def from_single_file(
        cls,
        path: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        strict: bool = True,
        config: Mapping[str, Any] | None = None,
    ) -> AutoencoderKL:
        """Load the VAE of an original single-file Stable Diffusion 1.x checkpoint.

        Parameters
        ----------
        path
            A ``.safetensors`` or ``.ckpt`` file in the LDM layout: a full
            checkpoint (``first_stage_model.*`` keys) or a standalone VAE file
            (``encoder.*``/``decoder.*`` keys).
        dtype, device, strict
            As in :meth:`from_diffusers`.
        config
            ``__init__`` values that replace the SD 1.x defaults (for other
            VAE sizes in the same layout).

        Returns
        -------
        AutoencoderKL
            The SD 1.x VAE, in eval mode.

        Raises
        ------
        CheckpointError
            If the file cannot be read or does not hold an SD 1.x VAE.
        """
        from emo.loaders.single_file import load_single_file_vae

        return load_single_file_vae(
            cls, path, dtype=dtype, device=device, strict=strict, config=config
        )
