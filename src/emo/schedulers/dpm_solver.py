"""Multistep DPM-Solver++ (Lu et al., 2022): good samples in 15-25 steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

from emo.errors import ConfigError
from emo.schedulers.base import SchedulerOutput, TimestepLike, random_noise
from emo.schedulers.betas import TIMESTEP_SPACINGS, check_choice
from emo.schedulers.core import predicted_x0, spaced_timesteps
from emo.schedulers.sigmas import (
    SigmaSchedulerBase,
    karras_sigmas,
    sigma_to_timestep,
    train_sigmas,
    with_final_sigma,
)

__all__ = ["DPMSolverMultistepScheduler"]


def _alpha_sigma(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha_t, sigma_t)`` of the variance-preserving process at noise level ``sigma``."""
    alpha = 1 / ((sigma**2 + 1) ** 0.5)
    return alpha, sigma * alpha


def _lambda(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Half log-SNR ``log(alpha) - log(sigma)``."""
    return torch.log(alpha) - torch.log(sigma)


class DPMSolverMultistepScheduler(SigmaSchedulerBase):
    """Multistep DPM-Solver++ of order 1, 2 or 3, optionally on Karras noise levels.

    A data-prediction ODE solver that reuses the model outputs of earlier steps, so each
    step costs one network evaluation. Order 2 is the usual choice for guided sampling.

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
    solver_order
        1, 2 or 3: how many past model outputs each step combines.
    prediction_type
        ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
    algorithm_type
        ``"dpmsolver++"`` (deterministic ODE solver) or ``"sde-dpmsolver++"`` (stochastic;
        draws noise from the ``generator`` of :meth:`step`).
    solver_type
        Second-order formula: ``"midpoint"`` or ``"heun"``.
    lower_order_final
        Use lower orders in the last steps when there are fewer than 15 (more stable).
    euler_at_final
        Take the last step with a first-order update.
    use_karras_sigmas
        Place the steps on the Karras et al. (2022) noise levels (``rho = 7``).
    final_sigmas_type
        Noise level after the last step: ``"zero"`` (fully denoised) or ``"sigma_min"``.
    lambda_min_clipped
        Skip training timesteps whose half log-SNR is below this (helps the cosine schedule).
    timestep_spacing
        ``"linspace"``, ``"leading"`` or ``"trailing"``.
    steps_offset
        Added to every ``leading`` timestep.
    rescale_betas_zero_snr
        Rescale betas to zero terminal SNR.
    """

    name = "dpm-solver++"
    description = "multistep DPM-Solver++ (orders 1-3, optional Karras sigmas): 15-25 steps"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        trained_betas: Sequence[float] | None = None,
        solver_order: int = 2,
        prediction_type: str = "epsilon",
        algorithm_type: str = "dpmsolver++",
        solver_type: str = "midpoint",
        lower_order_final: bool = True,
        euler_at_final: bool = False,
        use_karras_sigmas: bool = False,
        final_sigmas_type: str = "zero",
        lambda_min_clipped: float | None = None,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        settings = dict(locals())  # the arguments, before any other local exists
        if solver_order not in (1, 2, 3) or isinstance(solver_order, bool):
            raise ConfigError(f"solver_order must be 1, 2 or 3, got {solver_order!r}")
        check_choice("algorithm_type", algorithm_type, ("dpmsolver++", "sde-dpmsolver++"))
        check_choice("solver_type", solver_type, ("midpoint", "heun"))
        check_choice("final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        check_choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        self._setup_noise_tables(settings)
        if rescale_betas_zero_snr:
            # Nearly (not exactly) zero, so the first sigma stays finite.
            self.alphas_cumprod[-1] = 2**-24
        self.alpha_t = torch.sqrt(self.alphas_cumprod)
        self.sigma_t = torch.sqrt(1 - self.alphas_cumprod)
        self.lambda_t = torch.log(self.alpha_t) - torch.log(self.sigma_t)
        self.sigmas = torch.from_numpy(train_sigmas(self.alphas_cumprod))
        self.timesteps = torch.from_numpy(
            np.linspace(0, num_train_timesteps - 1, num_train_timesteps, dtype=np.float32)[
                ::-1
            ].copy()
        )
        self.model_outputs: list[torch.Tensor | None] = [None] * solver_order
        self.lower_order_nums = 0
        self._reset_counter()

    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None
    ) -> None:
        """Choose ``n`` timesteps and their noise levels; clears the solver history.

        The arguments are those of :meth:`SchedulerBase.set_timesteps
        <emo.schedulers.base.SchedulerBase.set_timesteps>`; :attr:`timesteps` is int64, ``(n,)``.
        """
        n = self._check_num_steps(num_inference_steps)
        cfg = self._settings
        count = int(cfg.num_train_timesteps)
        clip = cfg.lambda_min_clipped
        if clip is None:
            last = count
        else:
            clipped = int(torch.searchsorted(torch.flip(self.lambda_t, [0]), float(clip)))
            last = count - clipped

        steps = spaced_timesteps(
            cfg.timestep_spacing,
            n,
            count,
            steps_offset=int(cfg.steps_offset),
            last=last,
            drop_first_train_step=True,
        ).astype(np.int64)

        base = train_sigmas(self.alphas_cumprod)
        log_base = np.log(base)
        timesteps: np.ndarray
        if cfg.use_karras_sigmas:
            descending = base[::-1]
            sigmas = karras_sigmas(float(descending[-1]), float(descending[0]), n)
            timesteps = np.array([sigma_to_timestep(s, log_base) for s in sigmas])
            if cfg.beta_schedule != "squaredcos_cap_v2":
                timesteps = timesteps.round()
        else:
            sigmas = np.interp(steps, np.arange(0, len(base)), base)
            timesteps = steps

        self.sigmas = with_final_sigma(sigmas, self.alphas_cumprod, cfg.final_sigmas_type)
        self.timesteps = torch.from_numpy(np.ascontiguousarray(timesteps)).to(
            device=device, dtype=torch.int64
        )
        self.num_inference_steps = len(timesteps)
        self._clear_history()
        self._reset_counter()

    def _clear_history(self) -> None:
        self.model_outputs = [None] * int(self._settings.solver_order)
        self.lower_order_nums = 0

    def _predict_x0(self, out: torch.Tensor, x: torch.Tensor, index: int) -> torch.Tensor:
        alpha, sigma = _alpha_sigma(self.sigmas[index])
        return predicted_x0(self._settings.prediction_type, out, x, alpha, sigma)

    def _first_order(
        self, x0: torch.Tensor, x: torch.Tensor, index: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        alpha_t, sigma_t = _alpha_sigma(self.sigmas[index + 1])
        alpha_s, sigma_s = _alpha_sigma(self.sigmas[index])
        h = _lambda(alpha_t, sigma_t) - _lambda(alpha_s, sigma_s)
        if noise is None:
            return (sigma_t / sigma_s) * x - (alpha_t * (torch.exp(-h) - 1.0)) * x0
        return (
            (sigma_t / sigma_s * torch.exp(-h)) * x
            + (alpha_t * (1 - torch.exp(-2.0 * h))) * x0
            + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise
        )

    def _second_order(
        self, history: list[torch.Tensor], x: torch.Tensor, index: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        alpha_t, sigma_t = _alpha_sigma(self.sigmas[index + 1])
        alpha_s0, sigma_s0 = _alpha_sigma(self.sigmas[index])
        alpha_s1, sigma_s1 = _alpha_sigma(self.sigmas[index - 1])
        lam_t = _lambda(alpha_t, sigma_t)
        lam_s0 = _lambda(alpha_s0, sigma_s0)
        lam_s1 = _lambda(alpha_s1, sigma_s1)
        m0, m1 = history[-1], history[-2]
        h, h_0 = lam_t - lam_s0, lam_s0 - lam_s1
        r0 = h_0 / h
        d0, d1 = m0, (1.0 / r0) * (m0 - m1)
        midpoint = self._settings.solver_type == "midpoint"
        if noise is None:
            if midpoint:
                return (
                    (sigma_t / sigma_s0) * x
                    - (alpha_t * (torch.exp(-h) - 1.0)) * d0
                    - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1
                )
            return (
                (sigma_t / sigma_s0) * x
                - (alpha_t * (torch.exp(-h) - 1.0)) * d0
                + (alpha_t * ((torch.exp(-h) - 1.0) / h + 1.0)) * d1
            )
        if midpoint:
            return (
                (sigma_t / sigma_s0 * torch.exp(-h)) * x
                + (alpha_t * (1 - torch.exp(-2.0 * h))) * d0
                + 0.5 * (alpha_t * (1 - torch.exp(-2.0 * h))) * d1
                + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise
            )
        return (
            (sigma_t / sigma_s0 * torch.exp(-h)) * x
            + (alpha_t * (1 - torch.exp(-2.0 * h))) * d0
            + (alpha_t * ((1.0 - torch.exp(-2.0 * h)) / (-2.0 * h) + 1.0)) * d1
            + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise
        )

    def _third_order(
        self, history: list[torch.Tensor], x: torch.Tensor, index: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        alpha_t, sigma_t = _alpha_sigma(self.sigmas[index + 1])
        alpha_s0, sigma_s0 = _alpha_sigma(self.sigmas[index])
        alpha_s1, sigma_s1 = _alpha_sigma(self.sigmas[index - 1])
        alpha_s2, sigma_s2 = _alpha_sigma(self.sigmas[index - 2])
        lam_t = _lambda(alpha_t, sigma_t)
        lam_s0 = _lambda(alpha_s0, sigma_s0)
        lam_s1 = _lambda(alpha_s1, sigma_s1)
        lam_s2 = _lambda(alpha_s2, sigma_s2)
        m0, m1, m2 = history[-1], history[-2], history[-3]
        h, h_0, h_1 = lam_t - lam_s0, lam_s0 - lam_s1, lam_s1 - lam_s2
        r0, r1 = h_0 / h, h_1 / h
        d1_0, d1_1 = (1.0 / r0) * (m0 - m1), (1.0 / r1) * (m1 - m2)
        d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
        d2 = (1.0 / (r0 + r1)) * (d1_0 - d1_1)
        if noise is None:
            return (
                (sigma_t / sigma_s0) * x
                - (alpha_t * (torch.exp(-h) - 1.0)) * m0
                + (alpha_t * ((torch.exp(-h) - 1.0) / h + 1.0)) * d1
                - (alpha_t * ((torch.exp(-h) - 1.0 + h) / h**2 - 0.5)) * d2
            )
        return (
            (sigma_t / sigma_s0 * torch.exp(-h)) * x
            + (alpha_t * (1.0 - torch.exp(-2.0 * h))) * m0
            + (alpha_t * ((1.0 - torch.exp(-2.0 * h)) / (-2.0 * h) + 1.0)) * d1
            + (alpha_t * ((1.0 - torch.exp(-2.0 * h) - 2.0 * h) / (2.0 * h) ** 2 - 0.5)) * d2
            + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise
        )

    @overload
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = ...,
        return_dict: Literal[True] = ...,
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
        variance_noise: torch.Tensor | None = None,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One multistep DPM-Solver++ step (its order depends on the history available).

        Parameters
        ----------
        model_output
            Network output, same shape as ``sample``.
        timestep
            The current timestep, one of :attr:`timesteps`, in order.
        sample
            The current sample, e.g. ``(b, c, f, h, w)``.
        generator
            Randomness of ``sde-dpmsolver++`` (unused by the deterministic solver).
        return_dict
            ``False`` returns ``(prev_sample, pred_original_sample)``.
        variance_noise
            Explicit noise for ``sde-dpmsolver++`` instead of drawing it.

        Returns
        -------
        SchedulerOutput or tuple
            ``prev_sample`` and ``pred_original_sample`` (the data prediction of this
            step), shaped and typed like ``sample``.
        """
        out, x = self._check_step_inputs(model_output, sample)
        index = self._index_for(timestep)
        if index != self._step_index:
            self._clear_history()  # a jump: earlier outputs belong to another trajectory
        cfg = self._settings
        n = len(self._timestep_values)
        short = bool(cfg.lower_order_final) and n < 15
        final = index == n - 1 and (
            bool(cfg.euler_at_final) or short or cfg.final_sigmas_type == "zero"
        )
        second_last = index == n - 2 and short

        dtype = x.dtype
        x, out = x.float(), out.float()
        x0 = self._predict_x0(out, x, index)
        order = int(cfg.solver_order)
        self.model_outputs = [*self.model_outputs[1:], x0]

        noise: torch.Tensor | None = None
        if cfg.algorithm_type == "sde-dpmsolver++":
            if variance_noise is not None:
                noise = variance_noise.to(out.device, torch.float32)
            else:
                noise = random_noise(out.shape, generator, out.device)

        history = [m for m in self.model_outputs if m is not None]
        if order == 1 or self.lower_order_nums < 1 or final:
            prev = self._first_order(x0, x, index, noise)
        elif order == 2 or self.lower_order_nums < 2 or second_last:
            prev = self._second_order(history, x, index, noise)
        else:
            prev = self._third_order(history, x, index, noise)
        self.lower_order_nums = min(self.lower_order_nums + 1, order)
        self._step_index = index + 1
        return self._finish(prev, x0, dtype, return_dict)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> torch.Tensor:
        """Noise clean samples to ``timesteps``: ``alpha * x0 + sigma_vp * noise``.

        At a scheduled timestep the schedule's noise level is used (with Karras sigmas it
        differs slightly from the training one); any other training timestep uses the
        training table.

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
        alpha, sigma_vp = _alpha_sigma(sigma)
        return (alpha * x0.float() + sigma_vp * noise.float()).to(x0.dtype)
