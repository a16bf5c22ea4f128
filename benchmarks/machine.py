"""One line that says which machine a benchmark ran on, printed with every figure.

Import it from a script in this folder (``from machine import describe``): the
script's own folder is on ``sys.path`` when it is run as ``python benchmarks/x.py``.
"""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (its affinity), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe(device: str = "cpu") -> str:
    """CPU model, usable cores, load average, torch version and threads, and the GPU if any.

    Parameters
    ----------
    device
        The device the benchmark runs on; a CUDA device adds the GPU's name and memory.
    """
    import torch

    parts = [f"{cpu_model()}, {usable_cores()} cores"]
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        parts.append(f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)")
    parts.append(f"Python {platform.python_version()}")
    return "machine: " + "; ".join(parts)


if __name__ == "__main__":
    print(describe())
