"""The functional core the built-in samplers share: timestep spacing and what a prediction means.

Like k-diffusion's sampling utilities, these are plain functions of tensors and
numbers, with no scheduler state: each sampler (:mod:`~emo.schedulers.ddim`,
:mod:`~emo.schedulers.dpm_solver`, :mod:`~emo.schedulers.euler`) keeps only its own
update rule.

Notation: a noisy sample on the variance-preserving scale is
``x_t = alpha * x0 + sigma * noise`` with ``alpha = sqrt(alphas_cumprod[t])`` and
``sigma = sqrt(1 - alphas_cumprod[t])``. A sampler that works on the sigma scale
(``x / alpha``, noise level ``sigma / alpha``) passes ``alpha = 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emo.schedulers.betas import TIMESTEP_SPACINGS, check_choice

__all__ = ["predicted_noise", "predicted_x0", "spaced_timesteps"]

Coefficient = torch.Tensor | float


def spaced_timesteps(
    spacing: str,
    num_inference_steps: int,
    num_train_timesteps: int,
    *,
    steps_offset: int = 0,
    last: int | None = None,
    drop_first_train_step: bool = False,
    round_linspace: bool = True,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Pick ``n`` inference timesteps among the training ones, descending.

    Parameters
    ----------
    spacing
        ``"linspace"``: evenly from ``0`` to ``last - 1``; ``"leading"``: multiples
        of ``last // n`` from 0, plus ``steps_offset``; ``"trailing"``: evenly from
        ``last - 1`` down, every ``num_train_timesteps / n``.
    num_inference_steps
        ``n``.
    num_train_timesteps
        ``T``.
    steps_offset
        Added to every ``leading`` timestep (1 for Stable Diffusion's DDIM).
    last
        Upper end of the range (default ``T``; smaller when the least noisy
        timesteps are clipped away).
    drop_first_train_step
        Space ``n + 1`` points (``linspace``, ``leading``) and drop the lowest one
        (the multistep solvers' convention: the final step goes to a separate
        final noise level).
    round_linspace
        Round ``linspace`` timesteps to integers (``False`` keeps fractional ones).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 values, highest first; cast them to the sampler's dtype.
    """
    check_choice("timestep_spacing", spacing, TIMESTEP_SPACINGS)
    n = num_inference_steps
    top = num_train_timesteps if last is None else last
    points = n + 1 if drop_first_train_step else n
    values: np.ndarray[Any, np.dtype[np.float64]]
    if spacing == "trailing":
        values = np.arange(top, 0, -num_train_timesteps / n).round() - 1.0
        return values
    if spacing == "linspace":
        values = np.linspace(0, top - 1, points)
        if round_linspace:
            values = values.round()
    else:  # leading
        values = (np.arange(0, points) * (top // points)).round().astype(np.float64)
    values = values[::-1]
    if drop_first_train_step:
        values = values[:-1]
    if spacing == "leading":
        values = values + steps_offset
    return np.ascontiguousarray(values)


def predicted_x0(
    prediction_type: str,
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha: Coefficient,
    sigma: Coefficient,
) -> torch.Tensor:
    """The clean sample ``x0`` a network output stands for.

    Parameters
    ----------
    prediction_type
        ``"epsilon"`` (the noise), ``"v_prediction"`` (``v = alpha * noise - sigma * x0``)
        or ``"sample"`` (``x0`` itself).
    model_output
        The network output, shaped like ``sample``.
    sample
        ``x_t``.
    alpha, sigma
        Signal and noise scales of ``x_t`` (numbers or tensors that broadcast).

    Returns
    -------
    torch.Tensor
        ``x0``, shaped like ``sample``.
    """
    if prediction_type == "sample":
        return model_output
    if prediction_type == "epsilon":
        return (sample - sigma * model_output) / alpha
    return alpha * sample - sigma * model_output  # v_prediction


def predicted_noise(
    x0: torch.Tensor, sample: torch.Tensor, alpha: Coefficient, sigma: Coefficient
) -> torch.Tensor:
    """The noise that takes ``x0`` to ``sample``: ``(x_t - alpha * x0) / sigma``."""
    return (sample - alpha * x0) / sigma
