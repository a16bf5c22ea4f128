"""DDIM: denoising diffusion implicit models (Song et al., 2021), the sampler of the EMO paper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

from emo.errors import ConfigError, InputError
from emo.schedulers.base import (
    SchedulerBase,
    SchedulerOutput,
    TimestepLike,
    as_sample,
    check_same_shape,
    random_noise,
    timestep_value,
)
from emo.schedulers.betas import TIMESTEP_SPACINGS, check_choice
from emo.schedulers.core import predicted_noise, predicted_x0, spaced_timesteps

__all__ = ["DDIMScheduler"]


class DDIMScheduler(SchedulerBase):
    """DDIM sampler; deterministic for ``eta=0``, DDPM-like noise for ``eta=1``.

    The defaults are the Stable Diffusion 1.5 settings (``scaled_linear`` betas from
    0.00085 to 0.012, ``leading`` spacing with ``steps_offset=1``, no clipping,
    ``set_alpha_to_one=False``). The paper samples with 40 DDIM steps.

    Parameters
    ----------
    num_train_timesteps
        ``T``, the number of training steps.
    beta_start, beta_end
        First and last beta of the ``linear``/``scaled_linear`` schedules.
    beta_schedule
        ``"linear"``, ``"scaled_linear"`` or ``"squaredcos_cap_v2"``.
    trained_betas
        Explicit betas (length ``T``), overriding the schedule.
    clip_sample
        Clamp the predicted ``x0`` to ``[-clip_sample_range, clip_sample_range]``
        (pixel-space models; off for latent diffusion).
    set_alpha_to_one
        For the last step, use ``alphas_cumprod = 1`` as the "previous" value (True) or
        ``alphas_cumprod[0]`` (False, Stable Diffusion).
    steps_offset
        Added to every ``leading`` timestep (1 for Stable Diffusion).
    prediction_type
        ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
    clip_sample_range
        See ``clip_sample``.
    timestep_spacing
        ``"leading"``, ``"trailing"`` or ``"linspace"``.
    rescale_betas_zero_snr
        Rescale betas to zero terminal SNR (use with ``trailing`` and ``v_prediction``).
    eta
        Default noise weight of :meth:`step` (0: DDIM, 1: DDPM-like); ``step(eta=...)``
        overrides it.

    Notes
    -----
    The "previous" timestep of a step at ``t`` is ``t - T // n`` for every spacing, as in
    the reference implementation this matches numerically.
    """

    name = "ddim"
    description = "DDIM (deterministic for eta=0), the sampler of the EMO paper"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        trained_betas: Sequence[float] | None = None,
        clip_sample: bool = False,
        set_alpha_to_one: bool = False,
        steps_offset: int = 1,
        prediction_type: str = "epsilon",
        clip_sample_range: float = 1.0,
        timestep_spacing: str = "leading",
        rescale_betas_zero_snr: bool = False,
        eta: float = 0.0,
    ) -> None:
        settings = dict(locals())  # the arguments, before any other local exists
        check_choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")
        self._setup_noise_tables(settings)
        self.final_alpha_cumprod = (
            torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0].clone()
        )
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.int64)

    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None
    ) -> None:
        """Choose ``n`` integer timesteps, descending, by ``timestep_spacing``.

        The arguments are those of :meth:`SchedulerBase.set_timesteps
        <emo.schedulers.base.SchedulerBase.set_timesteps>`; :attr:`timesteps` is int64, ``(n,)``.
        """
        n = self._check_num_steps(num_inference_steps)
        count = int(self._settings.num_train_timesteps)
        values = spaced_timesteps(
            self._settings.timestep_spacing,
            n,
            count,
            steps_offset=int(self._settings.steps_offset),
        )
        self.num_inference_steps = n
        self.timesteps = torch.from_numpy(values.astype(np.int64)).to(device)

    def _alpha_prod(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    @overload
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = ...,
        return_dict: Literal[True] = ...,
        eta: float | None = ...,
        use_clipped_model_output: bool = ...,
        variance_noise: torch.Tensor | None = ...,
    ) -> SchedulerOutput: ...

    @overload
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = ...,
        return_dict: Literal[False],
        eta: float | None = ...,
        use_clipped_model_output: bool = ...,
        variance_noise: torch.Tensor | None = ...,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = ...,
        return_dict: bool = ...,
        eta: float | None = ...,
        use_clipped_model_output: bool = ...,
        variance_noise: torch.Tensor | None = ...,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]: ...

    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        eta: float | None = None,
        use_clipped_model_output: bool = False,
        variance_noise: torch.Tensor | None = None,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One DDIM step from ``timestep`` to ``timestep - T // n``.

        Parameters
        ----------
        model_output
            Network output, same shape as ``sample``.
        timestep
            The current (integer) timestep.
        sample
            The current sample, e.g. ``(b, c, f, h, w)``.
        generator
            Randomness of the added noise when ``eta > 0`` (reproducible runs).
        return_dict
            ``False`` returns ``(prev_sample, pred_original_sample)``.
        eta
            Noise weight for this step; ``None`` uses the config's ``eta``.
        use_clipped_model_output
            Recompute the noise estimate from the clipped ``x0``.
        variance_noise
            Explicit noise for ``eta > 0`` instead of drawing it, same shape as ``sample``.

        Returns
        -------
        SchedulerOutput or tuple
            ``prev_sample`` and ``pred_original_sample``, shaped and typed like ``sample``.
        """
        n = self._check_ready()
        x = as_sample(sample, "sample")
        out = as_sample(model_output, "model_output")
        check_same_shape(out, x, "model_output", "sample")
        count = int(self._settings.num_train_timesteps)
        value = timestep_value(timestep)
        t = int(value)
        if t != value or not 0 <= t < count:
            raise InputError(
                f"DDIM timestep must be an integer in [0, {count - 1}], got {value}; pass one "
                "of scheduler.timesteps"
            )
        eta = float(self._settings.eta if eta is None else eta)
        if eta < 0:
            raise InputError(f"eta must be >= 0, got {eta}")
        dtype = x.dtype
        x, out = x.float(), out.float()
        prev_t = t - count // n

        alpha_t = self.alphas_cumprod[t]
        alpha_prev = self._alpha_prod(prev_t)
        beta_t = 1 - alpha_t

        kind = self._settings.prediction_type
        x0 = predicted_x0(kind, out, x, alpha_t**0.5, beta_t**0.5)
        if kind == "epsilon":
            eps = out
        elif kind == "sample":
            eps = predicted_noise(x0, x, alpha_t**0.5, beta_t**0.5)
        else:  # v_prediction
            eps = alpha_t**0.5 * out + beta_t**0.5 * x

        if self._settings.clip_sample:
            limit = float(self._settings.clip_sample_range)
            x0 = x0.clamp(-limit, limit)

        # Variance of the DDPM posterior between t and prev_t, scaled by eta.
        beta_prev = 1 - alpha_prev
        variance = (beta_prev / beta_t) * (1 - alpha_t / alpha_prev)
        std = eta * variance**0.5

        if use_clipped_model_output:
            eps = predicted_noise(x0, x, alpha_t**0.5, beta_t**0.5)

        direction = (1 - alpha_prev - std**2) ** 0.5 * eps
        prev = alpha_prev**0.5 * x0 + direction

        if eta > 0:
            if variance_noise is not None and generator is not None:
                raise InputError("pass either generator or variance_noise to step, not both")
            if variance_noise is None:
                noise = random_noise(out.shape, generator, out.device)
            else:
                check_same_shape(
                    as_sample(variance_noise, "variance_noise"), x, "variance_noise", "sample"
                )
                noise = variance_noise.to(out.device, torch.float32)
            prev = prev + std * noise

        return self._finish(prev, x0, dtype, return_dict)
