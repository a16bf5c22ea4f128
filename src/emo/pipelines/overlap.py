"""Decoding and writing clip k on a background thread while clip k+1 is denoised.

A generation denoises clip after clip; each finished clip is decoded by the VAE,
watermarked and handed to the video writer. None of that feeds the next clip (its
motion frames are latents), so it can run on a second thread while the main thread
denoises the next clip: torch operations release the GIL, video encoding runs in
FFmpeg's own threads, and on a GPU the decoding runs on a side CUDA stream so its
kernels can interleave with the denoising ones.

Memory stays bounded by one clip: at most one finished clip waits for the worker
(a queue of one), so the main thread never runs more than one clip ahead. The
price is that one clip's decoding and one clip's denoising can be in memory at the
same time. Whether it pays depends on the machine: measure it with
``benchmarks/decode_overlap.py`` (``docs/guide/performance.md`` has the figures).

The output is the same, byte for byte: the worker runs the same operations on the
same values, in the same order of clips. An error in the worker is raised in the
main thread, as the same exception, at the next clip or at the end; an error or an
interrupt in the main thread stops the worker (the clip it is on is finished, the
waiting one dropped) before the writer deletes its temporary file.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import torch

from emo.errors import InputError

__all__ = ["consume_clips", "resolve_overlap"]

ClipConsumer = Callable[[int, torch.Tensor], None]
_DONE = None


def resolve_overlap(overlap: bool | None, device: torch.device) -> bool:
    """Whether to overlap: ``overlap`` itself, or for ``None`` the measured default of ``device``.

    On a CPU the background thread competes with the denoising for the same
    cores; the only measurement so far (a shared 2-core machine, see the
    performance guide) was too noisy to change what every CPU run does: off.
    On a GPU the decoding's kernels and the CPU's video encoding can run while
    the GPU denoises: on (not measured on a GPU yet).

    Raises
    ------
    InputError
        If ``overlap`` is not a bool or None.
    """
    if overlap is not None and not isinstance(overlap, bool):
        raise InputError(f"overlap_decoding must be True, False or None, got {overlap!r}")
    if overlap is None:
        return device.type == "cuda"
    return overlap


def consume_clips(
    clips: Iterable[tuple[int, torch.Tensor]], consume: ClipConsumer, *, overlap: bool
) -> None:
    """Call ``consume(index, latents)`` for every clip, on a background thread if ``overlap``.

    Parameters
    ----------
    clips
        ``(index, latents)`` pairs, produced lazily (the denoising of each clip runs
        when the next pair is asked for).
    consume
        Decodes and writes one clip.
    overlap
        Run ``consume`` on one background thread with at most one clip waiting.
    """
    if not overlap:
        for index, latents in clips:
            consume(index, latents)
        return
    with _ClipWorker(consume) as worker:
        for index, latents in clips:
            worker.submit(index, latents)


class _ClipWorker:
    """One background thread that runs ``consume`` on the clips it is given, in order."""

    def __init__(self, consume: ClipConsumer) -> None:
        self._consume = consume
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        # Thread-local torch state the worker must share with the caller's thread.
        self._grad = torch.is_grad_enabled()
        self._autocast = [
            (kind, torch.get_autocast_dtype(kind))
            for kind in ("cpu", "cuda")
            if torch.is_autocast_enabled(kind)
        ]
        self._streams: dict[torch.device, Any] = {}  # used by the main thread only
        self._thread = threading.Thread(target=self._run, name="emo-clip-writer", daemon=True)

    def __enter__(self) -> _ClipWorker:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None:  # the main thread failed or was interrupted: stop now
            self._stop.set()
        self._queue.put(_DONE)
        self._thread.join()
        if error is None and self._error is not None:
            raise self._error

    def submit(self, index: int, latents: torch.Tensor) -> None:
        """Hand a clip to the worker; waits while one clip is already waiting."""
        if self._error is not None:
            raise self._error
        # An own copy: the producer may reuse its buffers for the next clip.
        latents = latents.clone()
        item = _Item(index, latents)
        if latents.device.type == "cuda":
            # The side stream must wait for the kernels that made the latents, and the
            # caching allocator must not hand their memory out while it reads them.
            if latents.device not in self._streams:
                self._streams[latents.device] = torch.cuda.Stream(latents.device)  # type: ignore[no-untyped-call]
            item.stream = self._streams[latents.device]
            item.ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
            item.ready.record(torch.cuda.current_stream(latents.device))
            latents.record_stream(item.stream)
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._stop.is_set() or self._error is not None:
                continue  # dropped: the generation is being abandoned
            try:
                with contextlib.ExitStack() as state:
                    state.enter_context(torch.set_grad_enabled(self._grad))
                    for kind, dtype in self._autocast:
                        state.enter_context(torch.autocast(kind, dtype=dtype))
                    if item.stream is not None:
                        item.stream.wait_event(item.ready)
                        state.enter_context(torch.cuda.stream(item.stream))
                    self._consume(item.index, item.latents)
            except BaseException as exc:  # raised again in the main thread
                self._error = exc


class _Item:
    """A clip handed to the worker (with, on a GPU, its stream and readiness event)."""

    def __init__(self, index: int, latents: torch.Tensor) -> None:
        self.index = index
        self.latents = latents
        self.stream: Any = None
        self.ready: Any = None
