"""Noise (beta) schedules shared by every built-in scheduler.

A discrete diffusion process with ``T`` training steps is described by its betas
``beta_t``: ``alpha_t = 1 - beta_t`` and ``alphas_cumprod[t] = prod(alpha_0 .. alpha_t)``.
A noisy sample at step ``t`` is ``sqrt(alphas_cumprod[t]) * x0 + sqrt(1 - alphas_cumprod[t]) * noise``.

The tables are computed in float32 exactly the way the widely used Stable Diffusion
configs expect, so a scheduler config written for Stable Diffusion 1.5 gives the same
numbers here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from emo.errors import ConfigError

__all__ = [
    "BETA_SCHEDULES",
    "PREDICTION_TYPES",
    "TIMESTEP_SPACINGS",
    "BetaSchedule",
    "PredictionType",
    "TimestepSpacing",
    "cosine_betas",
    "make_betas",
    "rescale_zero_terminal_snr",
]

BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]
"""Names of the built-in beta schedules."""

PredictionType = Literal["epsilon", "v_prediction", "sample"]
"""What the denoising network predicts: the noise, the velocity ``v`` or ``x0`` itself."""

TimestepSpacing = Literal["leading", "trailing", "linspace"]
"""How inference timesteps are picked among the training timesteps."""

BETA_SCHEDULES: tuple[str, ...] = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")
TIMESTEP_SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")


def cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of the "squaredcos_cap_v2" (improved-DDPM cosine) schedule.

    ``alpha_bar(s) = cos((s + 0.008) / 1.008 * pi / 2) ** 2`` is discretised as
    ``beta_i = min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta)``.

    Parameters
    ----------
    num_train_timesteps
        ``T``, the number of training steps.
    max_beta
        Upper clip of each beta (avoids a singular last step).

    Returns
    -------
    torch.Tensor
        Float32 betas, shape ``(T,)``.
    """

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    values = [
        min(
            1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps),
            max_beta,
        )
        for i in range(num_train_timesteps)
    ]
    return torch.tensor(values, dtype=torch.float32)


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Rescale betas so that the last training step has zero signal-to-noise ratio.

    Algorithm 1 of Lin et al., "Common Diffusion Noise Schedules and Sample Steps are
    Flawed" (2023): ``sqrt(alphas_cumprod)`` is shifted so its last value is 0 and scaled
    so its first value is unchanged. Use it with ``v_prediction`` models trained that way.

    Parameters
    ----------
    betas
        Betas, shape ``(T,)``.

    Returns
    -------
    torch.Tensor
        The rescaled betas, shape ``(T,)``; the last one is 1.
    """
    sqrt_bar = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = sqrt_bar[0].clone(), sqrt_bar[-1].clone()
    sqrt_bar = (sqrt_bar - last) * (first / (first - last))
    bar = sqrt_bar**2
    alphas = torch.cat([bar[0:1], bar[1:] / bar[:-1]])
    return 1 - alphas


def make_betas(
    num_train_timesteps: int,
    beta_start: float,
    beta_end: float,
    beta_schedule: str,
    trained_betas: Sequence[float] | None = None,
    rescale_betas_zero_snr: bool = False,
) -> torch.Tensor:
    """Build the float32 beta table of a scheduler config, validating it.

    Parameters
    ----------
    num_train_timesteps
        ``T``, the number of training steps (at least 2).
    beta_start, beta_end
        First and last beta of the ``linear`` and ``scaled_linear`` schedules.
    beta_schedule
        ``"linear"`` (evenly spaced betas), ``"scaled_linear"`` (evenly spaced square
        roots, Stable Diffusion) or ``"squaredcos_cap_v2"`` (cosine).
    trained_betas
        Explicit betas, length ``T``; overrides the schedule.
    rescale_betas_zero_snr
        Apply :func:`rescale_zero_terminal_snr`.

    Returns
    -------
    torch.Tensor
        Betas, shape ``(T,)``, float32.

    Raises
    ------
    ConfigError
        If a value is out of range or the schedule name is unknown.
    """
    if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, int):
        raise ConfigError(f"num_train_timesteps must be an int, got {num_train_timesteps!r}")
    if num_train_timesteps < 2:
        raise ConfigError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
    if trained_betas is not None:
        try:
            betas = torch.tensor(list(trained_betas), dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"trained_betas must be a list of numbers, got {trained_betas!r:.200}"
            ) from exc
        if betas.ndim != 1 or betas.numel() != num_train_timesteps:
            raise ConfigError(
                f"trained_betas has {betas.numel()} values but num_train_timesteps is "
                f"{num_train_timesteps}; pass one beta per training step"
            )
        if not bool(((betas > 0) & (betas <= 1)).all()):
            raise ConfigError("trained_betas must all lie in (0, 1]")
    elif beta_schedule == "linear" or beta_schedule == "scaled_linear":
        if not 0 < beta_start <= beta_end < 1:
            raise ConfigError(
                f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, "
                f"beta_end={beta_end}"
            )
        if beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        else:
            betas = (
                torch.linspace(
                    beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32
                )
                ** 2
            )
    elif beta_schedule == "squaredcos_cap_v2":
        betas = cosine_betas(num_train_timesteps)
    else:
        raise ConfigError(
            f"unknown beta_schedule {beta_schedule!r}; choose one of {list(BETA_SCHEDULES)} "
            "or pass trained_betas"
        )
    if rescale_betas_zero_snr:
        betas = rescale_zero_terminal_snr(betas)
    return betas


def check_choice(key: str, value: object, choices: Sequence[str]) -> None:
    """Raise :class:`~emo.errors.ConfigError` unless ``value`` is one of ``choices``.

    Parameters
    ----------
    key
        The config key, for the message.
    value
        The value given.
    choices
        The accepted values.
    """
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not supported; choose one of {list(choices)}")
