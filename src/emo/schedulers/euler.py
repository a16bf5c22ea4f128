"""Euler sampler on discrete training noise levels (Karras et al., 2022, Algorithm 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

from emo.errors import ConfigError
from emo.schedulers.base import SchedulerOutput, TimestepLike, as_sample, random_noise
from emo.schedulers.betas import TIMESTEP_SPACINGS, check_choice
from emo.schedulers.core import predicted_x0, spaced_timesteps
from emo.schedulers.sigmas import (
    SigmaSchedulerBase,
    karras_sigmas,
    sigma_to_timestep,
    train_sigmas,
    with_final_sigma,
)

__all__ = ["EulerDiscreteScheduler"]


class EulerDiscreteScheduler(SigmaSchedulerBase):
    """First-order Euler ODE sampler in the ``x = x0 + sigma * noise`` parametrisation.

    Samples live on the noise-level scale: the initial noise is scaled by
    :attr:`init_noise_sigma` (about 14.6 for Stable Diffusion) and
    :meth:`scale_model_input` divides by ``sqrt(sigma ** 2 + 1)`` before the network.
    Optional "churn" (``s_churn`` in :meth:`step`) adds fresh noise per step.

    Parameters
    ----------
    num_train_timesteps
        ``T``, the number of training steps.
    beta_start, beta_end
        First and last beta of the ``linear``/``scaled_linear`` schedules.
    beta_schedule
        ``"linear"``, ``"scaled_linear"`` (Stable Diffusion, default) or ``"squaredcos_cap_v2"``.
    trained_betas
        Explicit betas (length ``T``), overriding the schedule.
    prediction_type
        ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
    use_karras_sigmas
        Place the steps on the Karras et al. (2022) noise levels (``rho = 7``).
    sigma_min, sigma_max
        Range of the Karras noise levels (default: the training range).
    timestep_spacing
        ``"linspace"``, ``"leading"`` or ``"trailing"``.
    steps_offset
        Added to every ``leading`` timestep.
    rescale_betas_zero_snr
        Rescale betas to zero terminal SNR.
    final_sigmas_type
        Noise level after the last step: ``"zero"`` or ``"sigma_min"``.
    """

    name = "euler"
    description = "Euler ODE sampler on discrete noise levels (optional Karras sigmas, churn)"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        trained_betas: Sequence[float] | None = None,
        prediction_type: str = "epsilon",
        use_karras_sigmas: bool = False,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
        final_sigmas_type: str = "zero",
    ) -> None:
        settings = dict(locals())  # the arguments, before any other local exists
        check_choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        check_choice("final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        for key, value in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
            if value is not None and not value > 0:
                raise ConfigError(f"{key} must be positive, got {value}")
        self._setup_noise_tables(settings)
        if rescale_betas_zero_snr:
            # Nearly (not exactly) zero, so the first sigma stays finite.
            self.alphas_cumprod[-1] = 2**-24
        descending = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).flip(0)
        self.sigmas = torch.cat([descending, torch.zeros(1)])
        self.timesteps = torch.from_numpy(
            np.linspace(0, num_train_timesteps - 1, num_train_timesteps, dtype=float)[::-1].copy()
        ).to(torch.float32)
        self._reset_counter()

    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the initial noise: the largest sigma (``sqrt(s ** 2 + 1)``
        for ``leading`` spacing)."""
        top = float(self.sigmas.max())
        if self._settings.timestep_spacing in ("linspace", "trailing"):
            return top
        return float((self.sigmas.max() ** 2 + 1) ** 0.5)

    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None
    ) -> None:
        """Choose ``n`` (float) timesteps and their noise levels.

        The arguments are those of :meth:`SchedulerBase.set_timesteps
        <emo.schedulers.base.SchedulerBase.set_timesteps>`; :attr:`timesteps` is float32, ``(n,)``.
        """
        n = self._check_num_steps(num_inference_steps)
        cfg = self._settings
        count = int(cfg.num_train_timesteps)
        timesteps: np.ndarray = spaced_timesteps(
            cfg.timestep_spacing,
            n,
            count,
            steps_offset=int(cfg.steps_offset),
            round_linspace=False,
        ).astype(np.float32)

        base = train_sigmas(self.alphas_cumprod)
        log_base = np.log(base)
        sigmas = np.interp(timesteps, np.arange(0, len(base)), base)
        if cfg.use_karras_sigmas:
            low = cfg.sigma_min if cfg.sigma_min is not None else float(sigmas[-1])
            high = cfg.sigma_max if cfg.sigma_max is not None else float(sigmas[0])
            sigmas = karras_sigmas(low, high, n)
            timesteps = np.array([sigma_to_timestep(s, log_base) for s in sigmas])

        self.sigmas = with_final_sigma(sigmas, self.alphas_cumprod, cfg.final_sigmas_type)
        self.timesteps = torch.from_numpy(np.ascontiguousarray(timesteps, dtype=np.float32)).to(
            device=device
        )
        self.num_inference_steps = n
        self._reset_counter()

    def scale_model_input(self, sample: torch.Tensor, timestep: TimestepLike) -> torch.Tensor:
        """Divide ``sample`` by ``sqrt(sigma ** 2 + 1)``: the network sees unit variance.

        Arguments and result as in :meth:`SchedulerBase.scale_model_input
        <emo.schedulers.base.SchedulerBase.scale_model_input>`.
        """
        x = as_sample(sample, "sample")
        index = self._index_for(timestep)
        self._step_index = index
        sigma = self.sigmas[index]
        return (x.float() / ((sigma**2 + 1) ** 0.5)).to(x.dtype)

    @overload
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = ...,
        return_dict: Literal[True] = ...,
        s_churn: float = ...,
        s_tmin: float = ...,
        s_tmax: float = ...,
        s_noise: float = ...,
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
        s_churn: float = ...,
        s_tmin: float = ...,
        s_tmax: float = ...,
        s_noise: float = ...,
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
        s_churn: float = ...,
        s_tmin: float = ...,
        s_tmax: float = ...,
        s_noise: float = ...,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]: ...

    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        s_churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float = float("inf"),
        s_noise: float = 1.0,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One Euler step from this step's sigma to the next one.

        Parameters
        ----------
        model_output
            Network output for ``scale_model_input(sample, timestep)``, same shape.
        timestep
            The current timestep, one of :attr:`timesteps`.
        sample
            The current (unscaled) sample, e.g. ``(b, c, f, h, w)``.
        generator
            Randomness of the churn noise.
        return_dict
            ``False`` returns ``(prev_sample, pred_original_sample)``.
        s_churn
            Amount of fresh noise per step (0: deterministic).
        s_tmin, s_tmax
            Churn applies only while ``s_tmin <= sigma <= s_tmax``.
        s_noise
            Scale of the churn noise.

        Returns
        -------
        SchedulerOutput or tuple
            ``prev_sample`` and ``pred_original_sample``, shaped and typed like ``sample``.
        """
        out, x = self._check_step_inputs(model_output, sample)
        index = self._index_for(timestep)
        dtype = x.dtype
        x, out = x.float(), out.float()
        sigma = self.sigmas[index]
        gamma = (
            min(s_churn / (len(self.sigmas) - 1), 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        )
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            eps = random_noise(out.shape, generator, out.device) * s_noise
            x = x + eps * (sigma_hat**2 - sigma**2) ** 0.5

        kind = self._settings.prediction_type
        if kind == "v_prediction":
            # v lives on the variance-preserving scale (x / sqrt(sigma ** 2 + 1)); this is
            # predicted_x0 rewritten on the sigma scale, exact for large sigmas.
            x0 = out * (-sigma / (sigma**2 + 1) ** 0.5) + (x / (sigma**2 + 1))
        else:  # the sigma scale: x = x0 + sigma_hat * noise
            x0 = predicted_x0(kind, out, x, 1.0, sigma_hat)

        derivative = (x - x0) / sigma_hat
        dt = self.sigmas[index + 1] - sigma_hat
        prev = x + derivative * dt
        self._step_index = index + 1
        return self._finish(prev, x0, dtype, return_dict)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> torch.Tensor:
        """Noise clean samples to ``timesteps`` on the sigma scale: ``x0 + sigma * noise``.

        At a scheduled timestep the schedule's sigma is used; any other training
        timestep uses the training table.

        Parameters
        ----------
        original_samples
            ``x0``, shape ``(b, ...)``.
        noise
            Standard normal noise, same shape.
        timesteps
            One timestep or one per sample, shape ``(b,)``.

        Returns
        -------
        torch.Tensor
            Same shape, device and dtype as ``original_samples``.
        """
        x0, sigma = self._vp_add_noise(original_samples, noise, timesteps)
        return (x0.float() + noise.float() * sigma).to(x0.dtype)
