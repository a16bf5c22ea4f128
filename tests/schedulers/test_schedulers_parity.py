"""Numerical parity of the built-in schedulers with diffusers' (a test-only oracle).

Every timestep and every ``step`` output of a full sampling loop, driven by a fixed fake
model (a deterministic function of the sample and the timestep), must agree within 1e-6
in float32 for each prediction type and timestep spacing.
"""

from __future__ import annotations

import itertools
from typing import Any

import diffusers  # test dependency: when missing these tests fail, never skip
import pytest
import torch

from emo.schedulers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

PAIRS = {
    "ddim": (DDIMScheduler, diffusers.DDIMScheduler),
    "dpm": (DPMSolverMultistepScheduler, diffusers.DPMSolverMultistepScheduler),
    "euler": (EulerDiscreteScheduler, diffusers.EulerDiscreteScheduler),
}
PREDICTIONS = ("epsilon", "v_prediction", "sample")
SPACINGS = ("leading", "trailing", "linspace")
SD15 = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}
# Scheduler-specific settings; every config is passed in full to both implementations
# (our defaults are the SD1.5 ones, diffusers' are not).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "ddim": [
        {"clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1},
        {"clip_sample": True, "set_alpha_to_one": True, "steps_offset": 0},
    ],
    "dpm": [
        {"solver_order": 2, "steps_offset": 0},
        {"solver_order": 1, "steps_offset": 1},
        {"solver_order": 3, "lower_order_final": False, "solver_type": "heun"},
        {"solver_order": 2, "use_karras_sigmas": True},
        {"solver_order": 3, "final_sigmas_type": "sigma_min"},
    ],
    "euler": [
        {"steps_offset": 1},
        {"use_karras_sigmas": True, "steps_offset": 0},
    ],
}
TOL = 1e-6


def fake_model(sample: torch.Tensor, timestep: torch.Tensor | float) -> torch.Tensor:
    """A fixed, smooth, deterministic stand-in for a denoising network."""
    t = float(timestep)
    return torch.sin(0.7 * sample + t / 300.0) * 0.9 + 0.05 * sample


def sample_loop(scheduler: Any, steps: int) -> tuple[torch.Tensor, list[tuple[Any, Any]]]:
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 8, 8, generator=generator) * scheduler.init_noise_sigma
    outputs = []
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        out = scheduler.step(fake_model(x_in, t), t, x)
        x = out.prev_sample
        outputs.append((x, getattr(out, "pred_original_sample", None), x_in))
    return scheduler.timesteps.clone(), outputs


def assert_loops_match(ours: Any, theirs: Any, steps: int) -> None:
    t_ours, out_ours = sample_loop(ours, steps)
    t_ref, out_ref = sample_loop(theirs, steps)
    assert t_ours.dtype == t_ref.dtype
    torch.testing.assert_close(t_ours, t_ref, rtol=0, atol=TOL)
    assert float(ours.init_noise_sigma) == pytest.approx(float(theirs.init_noise_sigma), abs=TOL)
    assert len(out_ours) == len(out_ref)
    for i, ((x, x0, x_in), (x_ref, x0_ref, x_in_ref)) in enumerate(
        zip(out_ours, out_ref, strict=True)
    ):
        torch.testing.assert_close(x_in, x_in_ref, rtol=0, atol=TOL, msg=f"input of step {i}")
        torch.testing.assert_close(x, x_ref, rtol=0, atol=TOL, msg=f"prev_sample of step {i}")
        if x0_ref is not None:  # diffusers' DPM-Solver does not return it
            torch.testing.assert_close(x0, x0_ref, rtol=0, atol=TOL, msg=f"x0 of step {i}")


CASES = [
    pytest.param(key, variant, prediction, spacing, id=f"{key}-{v}-{prediction}-{spacing}")
    for key in PAIRS
    for (v, variant), prediction, spacing in itertools.product(
        enumerate(VARIANTS[key]), PREDICTIONS, SPACINGS
    )
]


@pytest.mark.parametrize(("key", "variant", "prediction", "spacing"), CASES)
def test_schedulers_full_loop_matches_diffusers(
    key: str, variant: dict[str, Any], prediction: str, spacing: str
) -> None:
    ours_cls, ref_cls = PAIRS[key]
    config = {**SD15, **variant, "prediction_type": prediction, "timestep_spacing": spacing}
    steps = 12 if spacing == "linspace" else 10
    assert_loops_match(ours_cls(**config), ref_cls(**config), steps)


@pytest.mark.parametrize("key", list(PAIRS))
@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("zero_snr", [False, True])
def test_schedulers_beta_schedules_and_zero_snr_match_diffusers(
    key: str, schedule: str, zero_snr: bool
) -> None:
    ours_cls, ref_cls = PAIRS[key]
    config = {
        **SD15,
        "beta_schedule": schedule,
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "prediction_type": "v_prediction",
        "timestep_spacing": "trailing",
        "rescale_betas_zero_snr": zero_snr,
        "steps_offset": 0,
    }
    if key == "ddim":
        config.update(clip_sample=False, set_alpha_to_one=False)
    ours, ref = ours_cls(**config), ref_cls(**config)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod, rtol=0, atol=0)
    assert_loops_match(ours, ref, 10)


@pytest.mark.parametrize("key", list(PAIRS))
def test_schedulers_timesteps_match_diffusers_for_many_step_counts(key: str) -> None:
    ours_cls, ref_cls = PAIRS[key]
    for spacing, steps in itertools.product(SPACINGS, (1, 3, 7, 25, 40, 50, 999)):
        config = {**SD15, "timestep_spacing": spacing, "steps_offset": 1}
        ours, ref = ours_cls(**config), ref_cls(**config)
        ours.set_timesteps(steps)
        ref.set_timesteps(steps)
        torch.testing.assert_close(ours.timesteps, ref.timesteps, rtol=0, atol=TOL)
        if hasattr(ref, "sigmas") and key != "ddim":
            torch.testing.assert_close(ours.sigmas, ref.sigmas, rtol=0, atol=0)


@pytest.mark.parametrize("key", list(PAIRS))
def test_schedulers_add_noise_matches_diffusers(key: str) -> None:
    ours_cls, ref_cls = PAIRS[key]
    config = {**SD15, "timestep_spacing": "leading", "steps_offset": 1}
    ours, ref = ours_cls(**config), ref_cls(**config)
    ours.set_timesteps(20)
    ref.set_timesteps(20)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, 2, 8, 8, generator=generator)
    noise = torch.randn(3, 4, 2, 8, 8, generator=generator)
    t = ref.timesteps[[0, 7, 19]]
    torch.testing.assert_close(
        ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), rtol=0, atol=TOL
    )


def test_schedulers_ddim_velocity_matches_diffusers() -> None:
    config = {**SD15, "prediction_type": "v_prediction"}
    ours, ref = DDIMScheduler(**config), diffusers.DDIMScheduler(**config)
    generator = torch.Generator().manual_seed(2)
    x0 = torch.randn(4, 4, 8, 8, generator=generator)
    noise = torch.randn(4, 4, 8, 8, generator=generator)
    t = torch.tensor([0, 10, 500, 999])
    torch.testing.assert_close(
        ours.get_velocity(x0, noise, t), ref.get_velocity(x0, noise, t), rtol=0, atol=TOL
    )
    torch.testing.assert_close(ours.training_target(x0, noise, t), ref.get_velocity(x0, noise, t))


def test_schedulers_ddim_eta_with_given_noise_matches_diffusers() -> None:
    config = {**SD15, "steps_offset": 1, "clip_sample": False, "set_alpha_to_one": False}
    ours, ref = DDIMScheduler(**config), diffusers.DDIMScheduler(**config)
    ours.set_timesteps(10)
    ref.set_timesteps(10)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    y = x.clone()
    for t in ours.timesteps:
        noise = torch.randn(x.shape, generator=generator)
        x = ours.step(fake_model(x, t), t, x, eta=1.0, variance_noise=noise).prev_sample
        y = ref.step(fake_model(y, t), t, y, eta=1.0, variance_noise=noise).prev_sample
        torch.testing.assert_close(x, y, rtol=0, atol=TOL)


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
@pytest.mark.parametrize("order", [2, 3])
def test_schedulers_sde_dpm_solver_with_given_noise_matches_diffusers(
    order: int, solver_type: str
) -> None:
    config = {
        **SD15,
        "algorithm_type": "sde-dpmsolver++",
        "solver_order": order,
        "solver_type": solver_type,
    }
    ours = DPMSolverMultistepScheduler(**config)
    ref = diffusers.DPMSolverMultistepScheduler(**config)
    ours.set_timesteps(10)
    ref.set_timesteps(10)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    y = x.clone()
    for t in ours.timesteps:
        noise = torch.randn(x.shape, generator=generator)
        x = ours.step(fake_model(x, t), t, x, variance_noise=noise).prev_sample
        y = ref.step(fake_model(y, t), t, y, variance_noise=noise).prev_sample
        torch.testing.assert_close(x, y, rtol=0, atol=TOL)


def test_schedulers_euler_churn_with_same_generator_matches_diffusers() -> None:
    ours = EulerDiscreteScheduler(**SD15)
    ref = diffusers.EulerDiscreteScheduler(**SD15)
    ours.set_timesteps(10)
    ref.set_timesteps(10)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    y = x.clone()
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    for t in ours.timesteps:
        out = fake_model(ours.scale_model_input(x, t), t)
        x = ours.step(out, t, x, s_churn=1.0, generator=g1).prev_sample
        out = fake_model(ref.scale_model_input(y, t), t)
        y = ref.step(out, t, y, s_churn=1.0, generator=g2).prev_sample
        torch.testing.assert_close(x, y, rtol=0, atol=TOL)
