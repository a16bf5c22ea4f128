"""Noise schedulers (samplers): the :class:`Scheduler` contract and the built-ins.

=================  ======================================  ==========================================
registry name      class                                   use
=================  ======================================  ==========================================
``ddim``           :class:`DDIMScheduler`                  the EMO paper's sampler (40 steps)
``dpm-solver++``   :class:`DPMSolverMultistepScheduler`    similar quality in 15-25 steps
``euler``          :class:`EulerDiscreteScheduler`         simple first-order ODE sampler
=================  ======================================  ==========================================

Get one through the registry, ``emo.plugins.create("scheduler", "dpm-solver++")``, which
also accepts a class or an instance (a ``diffusers`` scheduler instance works too).
"""

from emo.schedulers.base import (
    Scheduler,
    SchedulerBase,
    SchedulerOutput,
    TimestepLike,
    scheduler_step,
)
from emo.schedulers.ddim import DDIMScheduler
from emo.schedulers.dpm_solver import DPMSolverMultistepScheduler
from emo.schedulers.euler import EulerDiscreteScheduler

__all__ = [
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerDiscreteScheduler",
    "Scheduler",
    "SchedulerBase",
    "SchedulerOutput",
    "TimestepLike",
    "scheduler_step",
]
