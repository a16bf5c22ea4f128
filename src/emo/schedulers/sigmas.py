"""Noise-level (sigma) helpers shared by the sigma-indexed schedulers (DPM-Solver++, Euler).

``sigma_t = sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t])`` is the noise level of a
training timestep in the "variance exploding" parametrisation ``x = x0 + sigma * noise``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emo.errors import InputError
from emo.schedulers.base import (
    SchedulerBase,
    TimestepLike,
    as_sample,
    batch_view,
    check_same_shape,
    timestep_value,
)

__all__ = [
    "SigmaSchedulerBase",
    "karras_sigmas",
    "sigma_to_timestep",
    "train_sigmas",
    "with_final_sigma",
]


def train_sigmas(alphas_cumprod: torch.Tensor) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Sigmas of all training timesteps, ascending in ``t``, shape ``(T,)``, float32."""
    sigmas: np.ndarray[Any, np.dtype[np.float32]] = (
        ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
    ).numpy()
    return sigmas


def karras_sigmas(
    sigma_min: float, sigma_max: float, num_steps: int, rho: float = 7.0
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The noise levels of Karras et al. (2022), eq. 5, from ``sigma_max`` down to ``sigma_min``.

    ``sigma_i = (sigma_max ** (1/rho) + i / (n - 1) * (sigma_min ** (1/rho) - sigma_max ** (1/rho))) ** rho``

    Parameters
    ----------
    sigma_min, sigma_max
        The range.
    num_steps
        ``n``.
    rho
        Curvature; 7 in the paper.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, float64, descending.
    """
    ramp = np.linspace(0, 1, num_steps)
    top = sigma_max ** (1 / rho)
    bottom = sigma_min ** (1 / rho)
    out: np.ndarray[Any, np.dtype[np.float64]] = (top + ramp * (bottom - top)) ** rho
    return out


def sigma_to_timestep(sigma: float, log_sigmas: np.ndarray[Any, np.dtype[np.float32]]) -> float:
    """The fractional training timestep whose sigma is ``sigma`` (interpolated in log sigma).

    Parameters
    ----------
    sigma
        A noise level.
    log_sigmas
        ``log`` of :func:`train_sigmas`, shape ``(T,)``, ascending.

    Returns
    -------
    float
        ``t`` in ``[0, T - 1]``.
    """
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    # Index of the last training sigma that is <= sigma, kept below the last entry.
    below = np.cumsum(log_sigma - log_sigmas >= 0).argmax()
    low = int(min(below, log_sigmas.shape[0] - 2))
    high = low + 1
    weight = (log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[high])
    weight = np.clip(weight, 0, 1)
    return float((1 - weight) * low + weight * high)


class SigmaSchedulerBase(SchedulerBase):
    """Base of schedulers that keep a per-step noise level :attr:`sigmas`.

    Keeps a step counter so repeated timesteps are handled in order, and looks a
    timestep up when a step does not follow the previous one (e.g. a restarted loop).

    Attributes
    ----------
    sigmas
        Noise level of each inference step plus the final one, shape ``(n + 1,)``,
        float32, on the CPU.
    """

    sigmas: torch.Tensor
    _step_index: int | None
    _begin_index: int | None
    _timestep_values: list[float]

    def _reset_counter(self) -> None:
        self._step_index = None
        self._begin_index = None
        self._timestep_values = [float(v) for v in self.timesteps.cpu().tolist()]

    @property
    def step_index(self) -> int | None:
        """Index into :attr:`timesteps` of the next step (``None`` before the first)."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step when sampling starts part-way (see :meth:`set_begin_index`)."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start the next loop at ``timesteps[begin_index]`` (image-to-image style sampling).

        Parameters
        ----------
        begin_index
            Index into :attr:`timesteps`.
        """
        if not 0 <= begin_index < len(self._timestep_values):
            raise InputError(
                f"begin_index must lie in [0, {len(self._timestep_values) - 1}], got {begin_index}"
            )
        self._begin_index = begin_index

    def _find(self, value: float) -> int | None:
        matches = [i for i, v in enumerate(self._timestep_values) if v == value]
        if not matches:
            return None
        # A duplicated timestep is entered at its second occurrence (sampling part-way).
        return matches[1] if len(matches) > 1 else matches[0]

    def _index_for(self, timestep: TimestepLike) -> int:
        """Index of ``timestep`` in the schedule, following the step counter."""
        self._check_ready()
        value = timestep_value(timestep)
        index = self._step_index
        if (
            index is not None
            and index < len(self._timestep_values)
            and self._timestep_values[index] == value
        ):
            return index
        if index is None and self._begin_index is not None:
            return self._begin_index
        if index is None and self._timestep_values and self._timestep_values[0] == value:
            return 0  # a fresh loop starts at the top, even if rounding repeated that value
        found = self._find(value)
        if found is None:
            raise InputError(
                f"timestep {value:g} is not one of this scheduler's timesteps; pass the values "
                "of scheduler.timesteps after set_timesteps"
            )
        return found

    def _sigmas_at(self, timesteps: TimestepLike, like: torch.Tensor) -> torch.Tensor:
        """Sigma per sample ``(b,)``: the schedule's at scheduled timesteps, else training."""
        if isinstance(timesteps, torch.Tensor):
            if timesteps.is_meta:
                raise InputError("timesteps is a tensor on the meta device (no value)")
            values = [float(v) for v in timesteps.detach().cpu().reshape(-1).tolist()]
        else:
            values = [timestep_value(timesteps, "timesteps")]
        if len(values) not in (1, like.shape[0] if like.ndim else 1):
            raise InputError(
                f"got {len(values)} timesteps for a batch of {like.shape[0]}; pass one per "
                "sample or a single one"
            )
        out = []
        for value in values:
            index = None
            if self.num_inference_steps is not None:
                if self._begin_index is not None:
                    index = self._step_index if self._step_index is not None else self._begin_index
                else:
                    index = self._find(value)
            if index is not None:
                out.append(self.sigmas[index])
            else:
                bar = self._alpha_bar_at(value, like).cpu()[0]
                out.append(((1 - bar) / bar) ** 0.5)
        return torch.stack(out).to(like.device)

    def _check_step_inputs(
        self, model_output: torch.Tensor, sample: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = as_sample(sample, "sample")
        out = as_sample(model_output, "model_output")
        check_same_shape(out, x, "model_output", "sample")
        return out, x

    def _vp_add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = as_sample(original_samples, "original_samples")
        check_same_shape(x0, as_sample(noise, "noise"), "original_samples", "noise")
        sigma = batch_view(self._sigmas_at(timesteps, x0), x0)
        return x0, sigma


def with_final_sigma(
    sigmas: np.ndarray[Any, Any], alphas_cumprod: torch.Tensor, final_sigmas_type: str
) -> torch.Tensor:
    """Append the last step's target noise level to inference ``sigmas``.

    Parameters
    ----------
    sigmas
        ``(n,)`` noise levels of the inference timesteps.
    alphas_cumprod
        ``(T,)`` cumulative alphas of the training schedule.
    final_sigmas_type
        ``"zero"`` (denoise fully) or ``"sigma_min"`` (stop at the smallest training sigma).

    Returns
    -------
    torch.Tensor
        float32 ``(n + 1,)``.
    """
    if final_sigmas_type == "sigma_min":
        final = float(((1 - alphas_cumprod[0]) / alphas_cumprod[0]) ** 0.5)
    else:
        final = 0.0
    return torch.from_numpy(np.concatenate([sigmas, [final]]).astype(np.float32))
