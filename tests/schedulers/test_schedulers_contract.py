"""The scheduler contract: swapping samplers through the registry, config, errors, dtypes."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import emo.plugins
from emo.errors import ConfigError, EMOWarning, InputError
from emo.schedulers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    Scheduler,
    SchedulerBase,
    SchedulerOutput,
    scheduler_step,
)

BUILTINS = {
    "ddim": DDIMScheduler,
    "dpm-solver++": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
}

# SD1.5 training noise table, computed independently of the code under test.
ALPHA_BAR = torch.cumprod(
    1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2, dim=0
)


def alpha_bar(t: torch.Tensor | float) -> float:
    value = float(t)
    low = min(math.floor(value), 998)
    weight = value - low
    return float(ALPHA_BAR[low] * (1 - weight) + ALPHA_BAR[low + 1] * weight)


TARGET = torch.linspace(-1, 1, 2 * 4 * 3 * 6 * 6).reshape(2, 4, 3, 6, 6)


def oracle_epsilon(x_in: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """A perfect noise predictor for data that is always ``TARGET`` (VP-scaled input)."""
    a = alpha_bar(t)
    return ((x_in.double() - a**0.5 * TARGET.double()) / (1 - a) ** 0.5).to(x_in.dtype)


def denoise(scheduler: Any, steps: int = 20, seed: int = 0) -> torch.Tensor:
    """The pipeline's loop, written against the contract only."""
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(TARGET.shape, generator=generator) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        x = scheduler.step(oracle_epsilon(x_in, t), t, x).prev_sample
    return x


class PlainDDIM:
    """A third-party scheduler that only duck-types the contract (no emo base class)."""

    order = 1
    init_noise_sigma = 1.0

    def __init__(self, train_steps: int = 1000) -> None:
        self.train_steps = train_steps
        self.timesteps = torch.arange(train_steps - 1, -1, -1)

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        self.timesteps = torch.linspace(999, 0, num_inference_steps).round().long().to(device)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        return sample

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor) -> Any:
        ts = self.timesteps.tolist()
        i = ts.index(int(timestep))
        a = alpha_bar(timestep)
        a_prev = alpha_bar(ts[i + 1]) if i + 1 < len(ts) else 1.0
        x0 = (sample - (1 - a) ** 0.5 * model_output) / a**0.5
        return SimpleNamespace(prev_sample=a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * model_output)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: Any) -> torch.Tensor:
        a = alpha_bar(t)
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise


def close_to_target(x: torch.Tensor) -> float:
    return float((x.double() - TARGET.double()).abs().mean())


@pytest.mark.parametrize("name", list(BUILTINS))
def test_schedulers_swap_by_name_class_and_instance(name: str) -> None:
    by_name = emo.plugins.create("scheduler", name)
    assert isinstance(by_name, BUILTINS[name])
    by_class = emo.plugins.create("scheduler", BUILTINS[name], steps_offset=1)
    assert by_class.config.steps_offset == 1
    instance = BUILTINS[name]()
    assert emo.plugins.create("scheduler", instance) is instance
    # SD1.5 DDIM ends at t=1 (alphas_cumprod[0] != 1): a trace of noise is left.
    tolerance = 0.05 if name == "ddim" else 0.02
    for scheduler in (by_name, by_class, instance):
        assert isinstance(scheduler, Scheduler)
        assert close_to_target(denoise(scheduler)) < tolerance


def test_schedulers_swap_with_diffusers_instances() -> None:
    import diffusers

    sd15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    for cls in (
        diffusers.DDIMScheduler,
        diffusers.DPMSolverMultistepScheduler,
        diffusers.EulerDiscreteScheduler,
    ):
        scheduler = emo.plugins.create("scheduler", cls(**sd15))
        assert isinstance(scheduler, Scheduler)
        assert close_to_target(denoise(scheduler)) < 0.02


def test_schedulers_swap_with_registered_plugin() -> None:
    emo.plugins.register("scheduler", "plain-ddim", PlainDDIM)
    try:
        assert "plain-ddim" in emo.plugins.available("scheduler")
        scheduler = emo.plugins.create("scheduler", "plain-ddim")
        assert isinstance(scheduler, PlainDDIM)
        assert isinstance(scheduler, Scheduler)
        assert close_to_target(denoise(scheduler)) < 0.02
        assert emo.plugins.plugin_name_of("scheduler", scheduler) == "plain-ddim"
    finally:
        emo.plugins.unregister("scheduler", "plain-ddim")


def test_schedulers_registered_subclass_of_base_keeps_config(tmp_path: Path) -> None:
    @emo.plugins.register("scheduler", "ddim-eta-half")
    class NoisyDDIM(DDIMScheduler):
        """DDIM with a different default eta."""

        name = "ddim-eta-half"

        def __init__(self, eta: float = 0.5, steps_offset: int = 1) -> None:
            super().__init__(eta=eta, steps_offset=steps_offset)

    try:
        scheduler = emo.plugins.create("scheduler", "ddim-eta-half")
        assert scheduler.config.eta == 0.5
        assert scheduler.config["_plugin_name"] == "ddim-eta-half"
        scheduler.save_pretrained(tmp_path)
        assert NoisyDDIM.from_pretrained(tmp_path).config == scheduler.config
    finally:
        emo.plugins.unregister("scheduler", "ddim-eta-half")


def test_schedulers_builtins_pass_the_registry_check() -> None:
    statuses = {s.info.name: s for s in emo.plugins.check("scheduler")}
    for name, cls in BUILTINS.items():
        assert statuses[name].loads, statuses[name].error
        assert emo.plugins.load("scheduler", name) is cls
        assert issubclass(cls, SchedulerBase)
        assert cls.name == name
        assert emo.plugins.plugin_name_of("scheduler", cls()) == name


# -- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("ddim", {"prediction_type": "v_prediction", "timestep_spacing": "trailing", "eta": 0.3}),
        ("dpm-solver++", {"solver_order": 3, "use_karras_sigmas": True, "trained_betas": None}),
        ("euler", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}),
    ],
)
def test_schedulers_save_and_load_round_trip(
    name: str, settings: dict[str, Any], tmp_path: Path
) -> None:
    scheduler = emo.plugins.create("scheduler", name, **settings)
    folder = scheduler.save_pretrained(tmp_path / name)
    assert (folder / "config.json").is_file()
    loaded = BUILTINS[name].from_pretrained(folder)
    assert loaded.config == scheduler.config
    scheduler.set_timesteps(12)
    loaded.set_timesteps(12)
    torch.testing.assert_close(loaded.timesteps, scheduler.timesteps)
    assert name in repr(loaded) or type(loaded).__name__ in repr(loaded)


def test_schedulers_from_config_switches_keeping_shared_settings() -> None:
    ddim = DDIMScheduler(
        beta_schedule="linear",
        beta_start=0.0002,
        beta_end=0.03,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        steps_offset=0,
        rescale_betas_zero_snr=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dpm = DPMSolverMultistepScheduler.from_config(ddim.config, solver_order=3)
        euler = EulerDiscreteScheduler.from_config(dpm)  # a scheduler object works too
        back = DDIMScheduler.from_config(euler.config)
    for scheduler in (dpm, euler, back):
        for key in ("beta_schedule", "beta_start", "beta_end", "prediction_type"):
            assert scheduler.config[key] == ddim.config[key]
        assert scheduler.config.timestep_spacing == "trailing"
        assert scheduler.config.rescale_betas_zero_snr is True
    assert dpm.config.solver_order == 3
    assert back.config == ddim.config
    with pytest.raises(ConfigError, match="solver_orderr"):
        DPMSolverMultistepScheduler.from_config(ddim.config, solver_orderr=2)


def test_schedulers_from_diffusers_config() -> None:
    import diffusers

    ref = diffusers.DPMSolverMultistepScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        use_karras_sigmas=True,
        solver_order=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = DPMSolverMultistepScheduler.from_config(ref.config)
        euler = EulerDiscreteScheduler.from_config(ref.config)
    assert ours.config.lambda_min_clipped is None  # diffusers' -inf: JSON has no infinity
    assert ours.config.solver_order == 3 and euler.config.use_karras_sigmas is True
    ours.set_timesteps(15)
    ref.set_timesteps(15)
    torch.testing.assert_close(ours.timesteps, ref.timesteps)
    with pytest.warns(EMOWarning, match="thresholding"):
        DDIMScheduler.from_config(diffusers.DDIMScheduler(thresholding=True).config)


def test_schedulers_defaults_are_stable_diffusion_15() -> None:
    for cls in BUILTINS.values():
        cfg = cls().config
        assert (cfg.beta_schedule, cfg.beta_start, cfg.beta_end) == (
            "scaled_linear",
            0.00085,
            0.012,
        )
        torch.testing.assert_close(cls().alphas_cumprod.double(), ALPHA_BAR, rtol=1e-5, atol=1e-6)
    ddim = DDIMScheduler().config
    assert (ddim.steps_offset, ddim.clip_sample, ddim.set_alpha_to_one) == (1, False, False)
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(40)
    assert scheduler.timesteps[0] == 976 and scheduler.timesteps[-1] == 1


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (DDIMScheduler, {"beta_schedule": "cosine"}, "beta_schedule"),
        (DDIMScheduler, {"prediction_type": "noise"}, "prediction_type"),
        (DDIMScheduler, {"timestep_spacing": "even"}, "timestep_spacing"),
        (DDIMScheduler, {"trained_betas": [0.1, 0.2]}, "trained_betas"),
        (DDIMScheduler, {"beta_start": 0.5, "beta_end": 0.1}, "beta_start"),
        (DDIMScheduler, {"num_train_timesteps": 1}, "num_train_timesteps"),
        (DDIMScheduler, {"eta": -1.0}, "eta"),
        (DPMSolverMultistepScheduler, {"solver_order": 4}, "solver_order"),
        (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver"}, "algorithm_type"),
        (DPMSolverMultistepScheduler, {"solver_type": "bh2"}, "solver_type"),
        (EulerDiscreteScheduler, {"final_sigmas_type": "one"}, "final_sigmas_type"),
        (EulerDiscreteScheduler, {"sigma_min": -1.0}, "sigma_min"),
    ],
)
def test_schedulers_bad_config_raises_config_error(
    cls: type[SchedulerBase], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", list(BUILTINS.values()))
def test_schedulers_bad_inputs_raise_input_error(cls: type[SchedulerBase]) -> None:
    scheduler = cls()
    x = torch.zeros(1, 4, 8, 8)
    with pytest.raises(InputError, match="set_timesteps"):
        scheduler.step(x, 999, x)
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(InputError, match="num_inference_steps"):
            scheduler.set_timesteps(bad)  # type: ignore[arg-type]
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[0]
    with pytest.raises(InputError, match="shape"):
        scheduler.step(torch.zeros(1, 4, 8, 9), t, x)
    with pytest.raises(InputError, match="torch.Tensor"):
        scheduler.step(x.numpy(), t, x)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="floating-point"):
        scheduler.step(x.long(), t, x)
    with pytest.raises(InputError, match="timestep"):
        scheduler.step(x, torch.tensor([1, 2]), x)
    with pytest.raises(InputError):
        scheduler.step(x, 1234.5, x)
    with pytest.raises(InputError, match="timesteps must lie"):
        scheduler.get_velocity(x, x, 1000)
    with pytest.raises(InputError, match="batch"):
        scheduler.training_target(x, x, torch.tensor([1, 2, 3]))


# -- dtype, device, randomness --------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTINS))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_schedulers_low_precision_is_stepped_in_float32(name: str, dtype: torch.dtype) -> None:
    scheduler = BUILTINS[name]()
    scheduler.set_timesteps(8)
    x = torch.randn(TARGET.shape, generator=torch.Generator().manual_seed(0))
    x = (x * scheduler.init_noise_sigma).to(dtype)
    reference = x.float()
    twin = BUILTINS[name]()
    twin.set_timesteps(8)
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        assert x_in.dtype == dtype
        out = scheduler.step(oracle_epsilon(x_in.float(), t).to(dtype), t, x)
        assert out.prev_sample.dtype == dtype and out.pred_original_sample.dtype == dtype
        x = out.prev_sample
        ref_in = twin.scale_model_input(reference, t)
        reference = twin.step(oracle_epsilon(ref_in, t), t, reference).prev_sample
    assert torch.isfinite(x.float()).all()
    assert (x.float() - reference).abs().mean() < 0.05


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ddim", {"eta": 0.7}),
        ("dpm-solver++", {"algorithm_type": "sde-dpmsolver++"}),
    ],
)
def test_schedulers_generator_makes_stochastic_steps_reproducible(
    name: str, options: dict[str, Any]
) -> None:
    def run(seed: int) -> torch.Tensor:
        scheduler = emo.plugins.create("scheduler", name, **options)
        scheduler.set_timesteps(10)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(1, 4, 8, 8, generator=generator)
        for t in scheduler.timesteps:
            x = scheduler.step(torch.tanh(x), t, x, generator=generator).prev_sample
        return x

    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.equal(run(1), run(2))


def test_schedulers_euler_churn_is_reproducible() -> None:
    def run(seed: int) -> torch.Tensor:
        scheduler = EulerDiscreteScheduler()
        scheduler.set_timesteps(10)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(1, 4, 8, 8, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            out = torch.tanh(scheduler.scale_model_input(x, t))
            x = scheduler.step(out, t, x, generator=generator, s_churn=0.5).prev_sample
        return x

    torch.testing.assert_close(run(3), run(3), rtol=0, atol=0)
    assert not torch.equal(run(3), run(4))


def test_schedulers_ddim_step_eta_overrides_config_and_checks_noise_args() -> None:
    scheduler = DDIMScheduler(eta=1.0)
    scheduler.set_timesteps(10)
    x = torch.ones(1, 4, 8, 8)
    t = scheduler.timesteps[3]
    deterministic = scheduler.step(x * 0.1, t, x, eta=0.0).prev_sample
    again = scheduler.step(x * 0.1, t, x, eta=0.0).prev_sample
    assert torch.equal(deterministic, again)
    noisy = scheduler.step(x * 0.1, t, x, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(noisy.prev_sample, deterministic)
    with pytest.raises(InputError, match="not both"):
        scheduler.step(x, t, x, generator=torch.Generator(), variance_noise=x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(BUILTINS))
def test_schedulers_tensors_stay_on_the_sample_device(name: str) -> None:
    scheduler = emo.plugins.create("scheduler", name)
    scheduler.set_timesteps(6, device="cuda")
    assert scheduler.timesteps.device.type == "cuda"
    x = torch.randn(1, 4, 8, 8, device="cuda", dtype=torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        assert x_in.device.type == "cuda"
        x = scheduler.step(torch.tanh(x_in), t, x, generator=generator).prev_sample
        assert x.device.type == "cuda" and x.dtype == torch.bfloat16
    noisy = scheduler.add_noise(x, torch.randn_like(x), scheduler.timesteps[:1])
    assert noisy.device.type == "cuda" and noisy.dtype == torch.bfloat16


# -- sampling details -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dpm-solver++", "euler"])
def test_schedulers_loop_can_be_rerun_without_set_timesteps(name: str) -> None:
    scheduler = emo.plugins.create("scheduler", name)
    scheduler.set_timesteps(12)

    def loop() -> torch.Tensor:
        x = torch.randn(TARGET.shape, generator=torch.Generator().manual_seed(0))
        x = x * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(x, t)
            x = scheduler.step(oracle_epsilon(x_in, t), t, x).prev_sample
        return x

    first = loop()
    torch.testing.assert_close(loop(), first, rtol=0, atol=0)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("karras", [False, True])
@pytest.mark.parametrize("steps", [1, 5, 25])
def test_schedulers_dpm_solver_orders_and_karras_converge(
    order: int, karras: bool, steps: int
) -> None:
    scheduler = DPMSolverMultistepScheduler(solver_order=order, use_karras_sigmas=karras)
    assert close_to_target(denoise(scheduler, steps)) < 0.02
    assert scheduler.order == 1


@pytest.mark.parametrize("name", list(BUILTINS))
def test_schedulers_return_dict_false_gives_a_tuple(name: str) -> None:
    scheduler = emo.plugins.create("scheduler", name)
    scheduler.set_timesteps(4)
    x = torch.randn(1, 4, 8, 8)
    t = scheduler.timesteps[0]
    result = scheduler.step(torch.tanh(scheduler.scale_model_input(x, t)), t, x, return_dict=False)
    assert isinstance(result, tuple) and len(result) == 2
    output = SchedulerOutput(*result)
    assert output.to_tuple() == result


def test_schedulers_part_way_sampling_with_begin_index() -> None:
    for cls in (DPMSolverMultistepScheduler, EulerDiscreteScheduler):
        scheduler = cls()
        scheduler.set_timesteps(20)
        start = 8
        scheduler.set_begin_index(start)
        noise = torch.randn(TARGET.shape, generator=torch.Generator().manual_seed(0))
        x = scheduler.add_noise(TARGET, noise, scheduler.timesteps[start : start + 1])
        for t in scheduler.timesteps[start:]:
            x_in = scheduler.scale_model_input(x, t)
            x = scheduler.step(oracle_epsilon(x_in, t), t, x).prev_sample
        assert close_to_target(x) < 0.02
        with pytest.raises(InputError, match="begin_index"):
            scheduler.set_begin_index(20)


# -- training helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTINS))
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_schedulers_training_target_per_prediction_type(name: str, prediction: str) -> None:
    scheduler = emo.plugins.create("scheduler", name, prediction_type=prediction)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 2, 8, 8, generator=generator)
    noise = torch.randn(3, 4, 2, 8, 8, generator=generator)
    t = torch.tensor([5, 500, 990])
    target = scheduler.training_target(x0, noise, t)
    assert target.shape == x0.shape
    a = ALPHA_BAR[t].float().reshape(3, 1, 1, 1, 1)
    expected = {
        "epsilon": noise,
        "sample": x0,
        "v_prediction": a**0.5 * noise - (1 - a) ** 0.5 * x0,
    }[prediction]
    torch.testing.assert_close(target, expected, rtol=1e-5, atol=1e-5)
    # A single timestep broadcasts over the batch; the output keeps the input dtype.
    half = scheduler.training_target(x0.half(), noise.half(), 500)
    assert half.dtype == torch.float16 and half.shape == x0.shape


def test_schedulers_ddim_add_noise_is_the_forward_process() -> None:
    scheduler = DDIMScheduler()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 3, 8, 8, generator=generator)
    noise = torch.randn(2, 4, 3, 8, 8, generator=generator)
    t = torch.tensor([100, 700])
    noisy = scheduler.add_noise(x0, noise, t)
    a = ALPHA_BAR[t].float().reshape(2, 1, 1, 1, 1)
    torch.testing.assert_close(noisy, a**0.5 * x0 + (1 - a) ** 0.5 * noise)
    torch.testing.assert_close(scheduler.add_noise(x0, noise, 100)[0], noisy[0])


def test_schedulers_sigma_add_noise_off_schedule_uses_training_table() -> None:
    euler, dpm = EulerDiscreteScheduler(), DPMSolverMultistepScheduler()
    euler.set_timesteps(10)
    dpm.set_timesteps(10)
    x0 = torch.zeros(1, 4, 8, 8)
    noise = torch.ones(1, 4, 8, 8)
    a = float(ALPHA_BAR[123])
    sigma = ((1 - a) / a) ** 0.5
    assert float(euler.add_noise(x0, noise, 123).mean()) == pytest.approx(sigma, rel=1e-4)
    assert float(dpm.add_noise(x0, noise, 123).mean()) == pytest.approx((1 - a) ** 0.5, rel=1e-4)


def test_schedulers_zero_terminal_snr() -> None:
    scheduler = DDIMScheduler(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    assert float(scheduler.alphas_cumprod[-1]) == 0.0
    assert float(scheduler.betas[-1]) == pytest.approx(1.0)
    for cls in (DPMSolverMultistepScheduler, EulerDiscreteScheduler):
        sigma_scheduler = cls(rescale_betas_zero_snr=True, timestep_spacing="trailing")
        assert 0 < float(sigma_scheduler.alphas_cumprod[-1]) < 1e-6
        sigma_scheduler.set_timesteps(10)
        assert math.isfinite(float(sigma_scheduler.init_noise_sigma))


def test_schedulers_scheduler_step_adapts_to_any_scheduler() -> None:
    import diffusers

    sd15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    schedulers = [
        emo.plugins.create("scheduler", "dpm-solver++"),
        emo.plugins.create("scheduler", "ddim", eta=0.0),
        PlainDDIM(),  # no generator argument, returns an object
        diffusers.UniPCMultistepScheduler(**sd15),  # no generator argument
        diffusers.HeunDiscreteScheduler(**sd15),  # order 2, no generator argument
        diffusers.EulerAncestralDiscreteScheduler(**sd15),  # stochastic, takes a generator
    ]
    for scheduler in schedulers:
        scheduler = emo.plugins.create("scheduler", scheduler)
        scheduler.set_timesteps(20)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(TARGET.shape, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(x, t)
            x = scheduler_step(scheduler, oracle_epsilon(x_in, t), t, x, generator=generator)
        assert close_to_target(x) < 0.05, type(scheduler).__name__
    ddim = DDIMScheduler()
    ddim.set_timesteps(2)
    x = torch.zeros(1, 4, 8, 8)
    t = ddim.timesteps[0]
    expected = ddim.step(x, t, x, return_dict=False)[0]
    torch.testing.assert_close(scheduler_step(ddim, x, t, x), expected)
