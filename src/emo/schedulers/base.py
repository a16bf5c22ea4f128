"""The scheduler contract (:class:`Scheduler`) and the base class of our schedulers.

A scheduler turns the denoising network's output at one timestep into the sample of
the next (less noisy) timestep. The contract is the de-facto one of the ``diffusers``
library, so one of its scheduler instances plugs in wherever ours do::

    scheduler.set_timesteps(num_inference_steps, device=device)
    x = torch.randn(shape, generator=generator) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        x = scheduler.step(model(x_in, t), t, x).prev_sample
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, Union, runtime_checkable

import torch

from emo.configuration import FrozenConfig, class_path
from emo.errors import EMOWarning, InputError
from emo.plugins.base import PluginBase
from emo.schedulers.betas import PREDICTION_TYPES, check_choice, make_betas

__all__ = ["Scheduler", "SchedulerBase", "SchedulerOutput", "TimestepLike", "scheduler_step"]

TimestepLike = Union[int, float, torch.Tensor]  # noqa: UP007 (a runtime alias on 3.10)
"""A timestep: a Python number or a tensor holding one (or, for ``add_noise``, one per sample)."""

_S = TypeVar("_S", bound="SchedulerBase")

# Options of diffusers scheduler configs that change the maths but that our schedulers do
# not implement, with the value that means "off". A foreign config that turns one on is
# accepted with a warning (the option is ignored).
_UNSUPPORTED_OPTIONS: dict[str, Any] = {
    "thresholding": False,
    "variance_type": None,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "use_lu_lambdas": False,
    "use_flow_sigmas": False,
    "use_dynamic_shifting": False,
    "timestep_type": "discrete",
    "interpolation_type": "linear",
}


@runtime_checkable
class Scheduler(Protocol):
    """The minimum a sampler must provide to drive emo's denoising loop.

    Only what every ``diffusers`` scheduler has is required, so those instances satisfy
    it unchanged. ``isinstance(obj, Scheduler)`` checks that the names exist. The three
    read-only properties may be plain attributes in an implementation.
    """

    @property
    def order(self) -> int:
        """How many model evaluations one step uses (1 for all built-ins)."""
        ...

    @property
    def init_noise_sigma(self) -> Any:
        """Standard deviation of the initial noise (a float or a 0-dim tensor)."""
        ...

    @property
    def timesteps(self) -> torch.Tensor:
        """The inference timesteps, shape ``(n,)``, valid after :meth:`set_timesteps`."""
        ...

    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None
    ) -> None:
        """Choose ``num_inference_steps`` timesteps for sampling (sets :attr:`timesteps`)."""

    def scale_model_input(self, sample: torch.Tensor, timestep: Any, /) -> torch.Tensor:
        """Return the network input for ``sample`` at ``timestep``; shape unchanged."""
        ...

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Advance ``sample`` one step; the result has ``.prev_sample`` (or is a tuple)."""

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any, /
    ) -> torch.Tensor:
        """Noise clean samples to ``timesteps`` (the forward process)."""
        ...


@dataclass(frozen=True)
class SchedulerOutput:
    """What :meth:`SchedulerBase.step` returns.

    Attributes
    ----------
    prev_sample
        The sample at the next (less noisy) timestep, shape as the input sample,
        e.g. ``(b, c, f, h, w)``; feed it to the next step.
    pred_original_sample
        The scheduler's estimate of the clean sample ``x0`` at this step, same shape;
        handy for previews.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor

    def to_tuple(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(prev_sample, pred_original_sample)``."""
        return (self.prev_sample, self.pred_original_sample)


@functools.lru_cache(maxsize=128)
def _step_accepts(step_type: type, name: str) -> bool:
    step = getattr(step_type, "step", None)
    try:
        parameters = inspect.signature(step).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def scheduler_step(
    scheduler: Scheduler,
    model_output: torch.Tensor,
    timestep: Any,
    sample: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Call ``scheduler.step`` and return the next sample, whatever the scheduler's flavour.

    The generator is passed only to schedulers whose ``step`` accepts one (several
    ``diffusers`` schedulers, e.g. UniPC, PNDM and Heun, do not), and both return styles,
    an object with ``.prev_sample`` or a tuple, are handled. Use it in denoising loops that
    accept any :class:`Scheduler`.

    Parameters
    ----------
    scheduler
        Any object satisfying :class:`Scheduler`.
    model_output
        The network output, shaped like ``sample``.
    timestep
        The current timestep, one of ``scheduler.timesteps``.
    sample
        The current sample, e.g. ``(b, c, f, h, w)``.
    generator
        Randomness for stochastic schedulers.

    Returns
    -------
    torch.Tensor
        The sample at the next timestep, shaped like ``sample``.
    """
    kwargs: dict[str, Any] = {}
    if generator is not None and _step_accepts(type(scheduler), "generator"):
        kwargs["generator"] = generator
    result = scheduler.step(model_output, timestep, sample, **kwargs)
    if isinstance(result, tuple):
        prev: torch.Tensor = result[0]
        return prev
    prev_sample: torch.Tensor = result.prev_sample
    return prev_sample


def as_sample(value: object, label: str) -> torch.Tensor:
    """Return ``value`` if it is a floating-point tensor, else raise :class:`InputError`."""
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{label} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise InputError(f"{label} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_same_shape(a: torch.Tensor, b: torch.Tensor, label_a: str, label_b: str) -> None:
    """Raise :class:`InputError` unless both tensors have the same shape."""
    if a.shape != b.shape:
        raise InputError(
            f"{label_a} has shape {tuple(a.shape)} but {label_b} has shape {tuple(b.shape)}; "
            "they must match"
        )


def timestep_value(timestep: object, label: str = "timestep") -> float:
    """Return a single timestep as a Python number.

    Raises
    ------
    InputError
        If ``timestep`` is not a number or a tensor holding exactly one number.
    """
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() != 1:
            raise InputError(
                f"{label} must hold one value, got a tensor of shape {tuple(timestep.shape)}"
            )
        if timestep.is_meta:
            raise InputError(f"{label} is a tensor on the meta device (no value)")
        value = float(timestep.item())
    elif isinstance(timestep, bool) or not isinstance(timestep, (int, float)):
        raise InputError(f"{label} must be a number or a tensor, got {type(timestep).__name__}")
    else:
        value = float(timestep)
    if not math.isfinite(value):
        raise InputError(f"{label} must be finite, got {value}")
    return value


def batch_view(coefficients: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample ``coefficients`` ``(b,)`` (or ``(1,)``) to broadcast over ``like``."""
    return coefficients.reshape(-1, *([1] * (like.ndim - 1)))


def random_noise(
    shape: torch.Size, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Float32 standard normal noise on ``device``, drawn from ``generator`` if given.

    The noise is drawn on the generator's device and then moved, so a CPU generator gives
    the same numbers whatever device the sample lives on.
    """
    if generator is None:
        return torch.randn(shape, device=device, dtype=torch.float32)
    noise = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(device)


class SchedulerBase(PluginBase, abc.ABC):
    """Base class of emo's schedulers: config, training helpers and harmless defaults.

    A subclass writes an ``__init__`` whose arguments are its config (keep the argument
    names of the matching ``diffusers`` scheduler), calls :meth:`_setup_noise_tables`
    and implements :meth:`set_timesteps` and :meth:`step`.

    Attributes
    ----------
    order
        Model evaluations per step (1).
    timesteps
        Inference timesteps, shape ``(n,)``; before :meth:`set_timesteps` every
        training timestep, descending.
    num_inference_steps
        ``n`` after :meth:`set_timesteps`, else ``None``.
    betas, alphas_cumprod
        Training noise tables, shape ``(T,)``, float32, on the CPU.
    """

    order: ClassVar[int] = 1
    timesteps: torch.Tensor
    _settings: FrozenConfig
    num_inference_steps: int | None
    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor

    def _setup_noise_tables(self, settings: Mapping[str, Any]) -> None:
        """Keep ``settings`` (the arguments of the concrete ``__init__``) and build the tables.

        The settings are what the maths reads; :attr:`config` holds the arguments of the
        outermost ``__init__``, which a subclass may narrow.
        """
        self._settings = FrozenConfig(
            {k: v for k, v in settings.items() if k not in ("self", "__class__")}
        )
        cfg = self._settings
        check_choice("prediction_type", cfg.prediction_type, PREDICTION_TYPES)
        trained = cfg.get("trained_betas")
        self.betas = make_betas(
            cfg.num_train_timesteps,
            cfg.beta_start,
            cfg.beta_end,
            cfg.beta_schedule,
            trained_betas=list(trained) if trained is not None else None,
            rescale_betas_zero_snr=bool(cfg.get("rescale_betas_zero_snr", False)),
        )
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.num_inference_steps = None

    # -- config --------------------------------------------------------------------------
    @classmethod
    def from_config(cls: type[_S], config: Mapping[str, Any] | Any, **overrides: Any) -> _S:
        """Build a scheduler from another scheduler's config, keeping the shared settings.

        Parameters
        ----------
        config
            A config mapping (``other.config``; a ``diffusers`` scheduler's ``.config``
            works too) or a scheduler object that has a ``.config``.
        **overrides
            Values that replace the config's.

        Returns
        -------
        SchedulerBase
            The new scheduler. Keys this class does not take are dropped; a foreign
            config that switches on an option we do not implement (``thresholding``,
            ``use_exponential_sigmas``...) triggers an :class:`~emo.errors.EMOWarning`.
        """
        if not isinstance(config, Mapping) and isinstance(getattr(config, "config", None), Mapping):
            config = config.config
        if not isinstance(config, Mapping):
            raise InputError(
                f"{cls.__name__}.from_config needs a config mapping or a scheduler, "
                f"got {type(config).__name__}"
            )
        if config.get("_class_name") != class_path(cls):
            config = dict(config)
            # Foreign (diffusers) spellings of "off" that JSON configs cannot hold.
            clip = config.get("lambda_min_clipped")
            if isinstance(clip, float) and math.isinf(clip) and clip < 0:
                config["lambda_min_clipped"] = None
            betas = config.get("trained_betas")
            if betas is not None and hasattr(betas, "tolist"):
                config["trained_betas"] = betas.tolist()
            accepted = set(inspect.signature(cls.__init__).parameters)
            ignored = sorted(
                key
                for key, off in _UNSUPPORTED_OPTIONS.items()
                if key not in accepted and key in config and config[key] != off
            )
            if ignored:
                warnings.warn(
                    f"{cls.__name__} does not implement {', '.join(ignored)} of the given "
                    "config; those options are ignored",
                    EMOWarning,
                    stacklevel=2,
                )
        return super().from_config(config, **overrides)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings.public().items())
        return f"{type(self).__name__}({settings})"

    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the initial noise: multiply ``randn`` by it (1.0 here)."""
        return 1.0

    @property
    def prediction_type(self) -> str:
        """What the network predicts: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``."""
        return str(self._settings.prediction_type)

    def __len__(self) -> int:
        """The number of training timesteps ``T``."""
        return int(self._settings.num_train_timesteps)

    # -- the sampling contract -----------------------------------------------------------
    @abc.abstractmethod
    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None
    ) -> None:
        """Choose the inference timesteps; sets :attr:`timesteps` on ``device``.

        Parameters
        ----------
        num_inference_steps
            ``n``, the number of denoising steps (1 to ``num_train_timesteps``).
        device
            Where :attr:`timesteps` lives.
        """

    def scale_model_input(self, sample: torch.Tensor, timestep: TimestepLike) -> torch.Tensor:
        """Return the network input for ``sample`` at ``timestep`` (unchanged by default).

        Parameters
        ----------
        sample
            The current sample, e.g. ``(b, c, f, h, w)``.
        timestep
            One of :attr:`timesteps`.

        Returns
        -------
        torch.Tensor
            Same shape, device and dtype as ``sample``.
        """
        return as_sample(sample, "sample")

    def _check_ready(self) -> int:
        if self.num_inference_steps is None:
            raise InputError(
                f"{type(self).__name__}.step was called before set_timesteps; call "
                "scheduler.set_timesteps(num_inference_steps) first"
            )
        return self.num_inference_steps

    def _check_num_steps(self, num_inference_steps: object) -> int:
        limit = int(self._settings.num_train_timesteps)
        if (
            isinstance(num_inference_steps, bool)
            or not isinstance(num_inference_steps, int)
            or not 1 <= num_inference_steps <= limit
        ):
            raise InputError(
                f"num_inference_steps must be an int from 1 to num_train_timesteps={limit}, "
                f"got {num_inference_steps!r}"
            )
        return num_inference_steps

    # -- training ------------------------------------------------------------------------
    def _alpha_bar_at(self, timesteps: TimestepLike, like: torch.Tensor) -> torch.Tensor:
        """``alphas_cumprod`` at training timesteps (linearly interpolated), ``(b,)`` float32."""
        if isinstance(timesteps, torch.Tensor):
            if timesteps.is_meta or timesteps.is_complex():
                raise InputError(
                    f"timesteps must be real numbers, got a {timesteps.dtype} tensor on {timesteps.device}"
                )
            t = timesteps.detach().to("cpu", torch.float64).reshape(-1)
        elif isinstance(timesteps, (int, float)) and not isinstance(timesteps, bool):
            t = torch.tensor([float(timesteps)], dtype=torch.float64)
        else:
            raise InputError(
                f"timesteps must be a number or a tensor, got {type(timesteps).__name__}"
            )
        count = len(self)
        if t.numel() not in (1, like.shape[0] if like.ndim else 1):
            raise InputError(
                f"got {t.numel()} timesteps for a batch of {like.shape[0]}; pass one per "
                "sample or a single one"
            )
        if not bool(torch.isfinite(t).all()) or bool(((t < 0) | (t > count - 1)).any()):
            raise InputError(f"timesteps must lie in [0, {count - 1}], got {t.tolist()}")
        low = t.floor().long().clamp(max=count - 1)
        high = (low + 1).clamp(max=count - 1)
        weight = (t - low.double()).float()
        table = self.alphas_cumprod
        values = table[low] + weight * (table[high] - table[low])
        return values.to(like.device)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> torch.Tensor:
        """Noise clean samples to ``timesteps``: ``sqrt(a) * x0 + sqrt(1 - a) * noise``.

        ``a`` is ``alphas_cumprod`` at each timestep (the forward process; use it to
        build training inputs or to start sampling part-way).

        Parameters
        ----------
        original_samples
            ``x0``, shape ``(b, ...)``, e.g. ``(b, c, f, h, w)``.
        noise
            Standard normal noise, same shape.
        timesteps
            One training timestep, or one per sample, shape ``(b,)``.

        Returns
        -------
        torch.Tensor
            The noisy samples, same shape, device and dtype as ``original_samples``.
        """
        x0 = as_sample(original_samples, "original_samples")
        check_same_shape(x0, as_sample(noise, "noise"), "original_samples", "noise")
        alpha_bar = batch_view(self._alpha_bar_at(timesteps, x0), x0)
        noisy = alpha_bar**0.5 * x0.float() + (1 - alpha_bar) ** 0.5 * noise.float()
        return noisy.to(x0.dtype)

    def get_velocity(
        self, sample: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> torch.Tensor:
        """The ``v_prediction`` target ``v = sqrt(a) * noise - sqrt(1 - a) * x0``.

        Parameters
        ----------
        sample
            The clean sample ``x0``, shape ``(b, ...)``.
        noise
            The noise that was added, same shape.
        timesteps
            One training timestep, or one per sample, shape ``(b,)``.

        Returns
        -------
        torch.Tensor
            The velocity, same shape, device and dtype as ``sample``.
        """
        x0 = as_sample(sample, "sample")
        check_same_shape(x0, as_sample(noise, "noise"), "sample", "noise")
        alpha_bar = batch_view(self._alpha_bar_at(timesteps, x0), x0)
        velocity = alpha_bar**0.5 * noise.float() - (1 - alpha_bar) ** 0.5 * x0.float()
        return velocity.to(x0.dtype)

    def training_target(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: TimestepLike
    ) -> torch.Tensor:
        """What the network must output for this scheduler's ``prediction_type``.

        ``epsilon``: the noise; ``sample``: ``x0``; ``v_prediction``: :meth:`get_velocity`.
        The network input is ``add_noise(x0, noise, t)`` of a variance-preserving
        scheduler (``ddim``); all three built-ins share the training tables.

        Parameters
        ----------
        original_samples
            ``x0``, shape ``(b, ...)``.
        noise
            The noise, same shape.
        timesteps
            One training timestep, or one per sample, shape ``(b,)``.

        Returns
        -------
        torch.Tensor
            The target, same shape and dtype as ``original_samples``.
        """
        x0 = as_sample(original_samples, "original_samples")
        check_same_shape(x0, as_sample(noise, "noise"), "original_samples", "noise")
        self._alpha_bar_at(timesteps, x0)  # validates the timesteps
        kind = self.prediction_type
        if kind == "epsilon":
            return noise.to(x0.dtype)
        if kind == "sample":
            return x0
        return self.get_velocity(x0, noise, timesteps)

    # -- helpers for subclasses ----------------------------------------------------------
    @staticmethod
    def _finish(
        prev_sample: torch.Tensor,
        pred_original_sample: torch.Tensor,
        dtype: torch.dtype,
        return_dict: bool,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        out = SchedulerOutput(prev_sample.to(dtype), pred_original_sample.to(dtype))
        return out if return_dict else out.to_tuple()

    @abc.abstractmethod
    def step(
        self,
        model_output: torch.Tensor,
        timestep: TimestepLike,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """Advance ``sample`` from ``timestep`` to the next inference timestep.

        Parameters
        ----------
        model_output
            The network output for ``scale_model_input(sample, timestep)``, same shape as
            ``sample``.
        timestep
            The current timestep, one of :attr:`timesteps`.
        sample
            The current sample, e.g. ``(b, c, f, h, w)``; any float dtype (stepped in
            float32, returned in its own dtype).
        generator
            Randomness of stochastic steps.
        return_dict
            ``False`` returns ``(prev_sample, pred_original_sample)``.

        Returns
        -------
        SchedulerOutput or tuple
            ``prev_sample`` and ``pred_original_sample``, shaped like ``sample``.
        """
