"""Catching NaN and inf during generation, at the step where they appear.

float16 overflows to inf on some GPUs and inf turns into NaN one operation later;
decoded, NaN latents give a black (or noisy) video with no error at all. The
pipeline therefore watches the latents after every denoising step. The check stays
on the device (a reduction and a masked fill, no host synchronisation); the result
is read once per clip, where the clip's latents leave for decoding anyway. Decoded
frames are checked too (Stable Diffusion VAEs are known to overflow in float16).
"""

from __future__ import annotations

import torch

from emo.errors import NumericalError

__all__ = ["NonFiniteWatch", "check_decoded"]


def _advice(dtype: torch.dtype) -> str:
    if dtype == torch.float16:
        return (
            "float16 overflows on some GPUs: run in bfloat16 or float32 "
            "(dtype=torch.bfloat16 in Python, --dtype bfloat16 for emo generate)"
        )
    if dtype == torch.bfloat16:
        return "run in float32 (dtype=torch.float32, --dtype float32) to rule out precision"
    return (
        "this happens in float32 only with broken weights or inputs: check the model's "
        "checkpoint, the guidance scales and any callback that changes the latents"
    )


class NonFiniteWatch:
    """Notes, on the device, the first denoising step whose latents hold NaN or inf.

    Parameters
    ----------
    device
        Where the latents live.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)

    def reset(self) -> None:
        """Start watching a new clip."""
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)

    def observe(self, step_index: int, latents: torch.Tensor) -> None:
        """Record ``step_index`` if ``latents`` ``(b, c, f, h, w)`` hold NaN/inf and no step did before.

        Queues two small device operations; never waits for the device.
        """
        bad = ~torch.isfinite(latents).all()
        self.first_bad = self.first_bad.masked_fill(bad & (self.first_bad < 0), step_index)

    def check(self, *, clip_index: int, total_clips: int, steps: int, dtype: torch.dtype) -> None:
        """Raise if a step of this clip went non-finite (reads one number from the device).

        Raises
        ------
        NumericalError
            Naming the step, the clip and what to do.
        """
        first = int(self.first_bad)
        if first >= 0:
            raise NumericalError(
                f"the latents became NaN or infinite at denoising step {first + 1} of {steps} "
                f"in clip {clip_index + 1} of {total_clips} (dtype {_name(dtype)}); "
                f"generation stopped. {_advice(dtype)}"
            )


def check_decoded(images: torch.Tensor, *, clip_index: int | None, dtype: torch.dtype) -> None:
    """Raise if decoded images ``(b, 3, f, h, w)`` hold NaN or inf.

    Raises
    ------
    NumericalError
        Naming the clip and what to do.
    """
    if bool(torch.isfinite(images).all()):
        return
    where = "" if clip_index is None else f" in clip {clip_index + 1}"
    raise NumericalError(
        f"the VAE decoder produced NaN or infinite pixels{where} (VAE dtype {_name(dtype)}); "
        f"generation stopped. {_advice(dtype)}"
    )


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
