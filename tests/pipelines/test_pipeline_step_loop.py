"""The denoising step loop does no avoidable work: checked by counting and by comparing values.

- no read of a tensor's value by the host inside the step loop (the place a GPU run
  would wait for the device);
- the reference keys/values are projected once per generation, once per distinct row;
- conditions prepared once equal the per-step inputs bit for bit, skipped audio
  attention of dropped rows included;
- batched and sequential guidance give the same video; each is deterministic.
"""

from __future__ import annotations

import itertools
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from emo.models.attention import BasicTransformerBlock
from emo.pipelines.emo_pipeline import EMOPipeline

pytestmark = pytest.mark.usefixtures("one_thread")

#: Tensor methods through which Python reads a tensor's value (on a GPU: a device sync).
HOST_READS = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__"}
#: Operators that read values inside torch (a scalar, or an output size given by the data).
DATA_DEPENDENT_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "unique")


class HostReadLog(TorchFunctionMode):
    """Logs, with a short stack, every read of a tensor's value by Python."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", "") in HOST_READS:
            self.log.append(f"{func.__name__}:\n" + "".join(traceback.format_stack(limit=6)))
        return func(*args, **(kwargs or {}))


class DataDependentOpLog(TorchDispatchMode):
    """Logs every operator that reads tensor values to decide a scalar or a shape."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.__name__.startswith(DATA_DEPENDENT_OPS):
            self.log.append(f"{func.__name__}:\n" + "".join(traceback.format_stack(limit=8)))
        return func(*args, **(kwargs or {}))


def _pipe(tiny_pipe: EMOPipeline, batching: str) -> EMOPipeline:
    pipe = EMOPipeline(**tiny_pipe.components)
    pipe.settings = tiny_pipe.settings.replace(
        guidance_batching=batching, reference_guidance_scale=2.0, num_inference_steps=3
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe: EMOPipeline, portrait: Path, audio: np.ndarray, **kwargs: Any) -> Any:
    return pipe(
        portrait,
        audio,
        audio_rate=16000,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )


@pytest.mark.parametrize("batching", ["batched", "sequential"])
def test_no_host_read_of_a_tensor_inside_the_step_loop(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, batching: str
) -> None:
    pipe = _pipe(tiny_pipe, batching)
    log: list[str] = []
    seen: list[tuple[int, int]] = []  # (clip, log length) at each step's end

    def at_step_end(_pipe: Any, step: int, t: Any, state: dict[str, Any]) -> None:
        seen.append((state["clip_index"], len(log)))

    with HostReadLog(log), DataDependentOpLog(log):
        _generate(pipe, portrait_path, short_speech, callback_on_step_end=at_step_end)
    steps = pipe.settings.num_inference_steps
    assert len(seen) == 4 * steps  # 4 clips
    # From the end of one step to the end of the next, within a clip: one whole step
    # (scale_model_input, Backbone, guidance, scheduler.step, callback).
    inside = [
        entry
        for (clip_a, start), (clip_b, stop) in itertools.pairwise(seen)
        if clip_a == clip_b
        for entry in log[start:stop]
    ]
    assert not inside, inside[0]
    # The detector itself works: the once-per-clip reads between the clips are seen.
    assert log


def test_the_detector_sees_a_host_read() -> None:
    log: list[str] = []
    with HostReadLog(log), DataDependentOpLog(log):
        x = torch.ones(3)
        if x.sum() > 0:  # Python branching on a tensor value
            float(x[0])
        torch.nonzero(x)
    assert [entry.split(":")[0] for entry in log] == [
        "__bool__",
        "_local_scalar_dense.default",
        "__float__",
        "_local_scalar_dense.default",
        "nonzero.default",
    ]


@pytest.mark.parametrize("batching", ["batched", "sequential"])
def test_reference_keys_and_values_are_projected_once_per_generation(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, batching: str
) -> None:
    pipe = _pipe(tiny_pipe, batching)
    blocks = [m for m in pipe.backbone.modules() if isinstance(m, BasicTransformerBlock)]
    calls: list[tuple[int, ...]] = []
    handles = [
        block.attn1.to_k.register_forward_hook(
            lambda _m, args, _out: calls.append(tuple(args[0].shape))
        )
        for block in blocks
    ]
    try:
        _generate(pipe, portrait_path, short_speech)
    finally:
        for handle in handles:
            handle.remove()
    steps, clips, branches = pipe.settings.num_inference_steps, 4, 3
    frames = pipe.settings.frames_per_clip
    per_step = 1 if batching == "batched" else branches
    # Per layer: its own tokens at every step (and branch call), the reference once.
    assert len(calls) == len(blocks) * (clips * steps * per_step + 1)
    reference_calls = [shape for shape in calls if shape[0] == 2]
    # [portrait, dropped]: the two distinct reference rows of the three branches.
    assert len(reference_calls) == len(blocks)
    own_rows = branches * frames if batching == "batched" else frames
    assert all(shape[0] == own_rows for shape in calls if shape[0] != 2)


def _backbone_inputs(pipe: EMOPipeline) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(5)
    backbone, refnet = pipe.backbone, pipe.reference_net
    with torch.no_grad():
        reference = refnet(torch.randn(2, 4, 4, 4, generator=gen), 0)
        motion = refnet.motion_features(torch.randn(1, 4, 2, 4, 4, generator=gen))
    d = int(backbone.config["audio_cross_attention_dim"])
    audio = torch.randn(1, 4, 3, d, generator=gen)
    return {
        "sample": torch.randn(3, 4, 4, 4, 4, generator=gen),
        "reference": reference,
        "audio": torch.cat([audio, torch.zeros(2, 4, 3, d)]),  # rows 1, 2: dropped
        "motion": motion,
        "speed": torch.tensor([[0.3, 0.5, 0.7, 0.9]]),
    }


def _activated(pipe: EMOPipeline) -> Any:
    """A copy of the Backbone whose zero-initialised branches carry random weights."""
    import copy

    backbone = copy.deepcopy(pipe.backbone)
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for param in backbone.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    return backbone


def test_prepared_conditions_equal_the_per_step_inputs_bit_for_bit(
    tiny_pipe: EMOPipeline,
) -> None:
    backbone = _activated(tiny_pipe)
    data = _backbone_inputs(tiny_pipe)
    index = torch.tensor([0, 0, 1])
    with torch.no_grad():
        rows = type(data["reference"])(
            {k: v.index_select(0, index) for k, v in data["reference"].attention.items()},
            {},
        )
        expected = backbone(
            data["sample"],
            7,
            reference_features=rows,
            audio_tokens=data["audio"],
            motion_features=data["motion"],
            speed=data["speed"],
        )
        # Projected once: bit for bit what every call projecting the tokens computes.
        keys_values = backbone.project_reference(rows)
        kwargs = {
            "reference_features": keys_values,
            "audio_tokens": data["audio"],
            "motion_features": data["motion"],
            "speed": data["speed"],
        }
        full = backbone.prepare_conditions(3, 4, **kwargs)
        skipping = backbone.prepare_conditions(3, 4, audio_rows=[0], **kwargs)
        got_full = backbone(data["sample"], 7, conditions=full)
        got_skipping = backbone(data["sample"], 7, conditions=skipping)
        # The distinct rows projected once and selected (what the pipeline does).
        distinct = backbone.project_reference(data["reference"]).select([0, 0, 1])
        got_distinct = backbone(
            data["sample"],
            7,
            conditions=backbone.prepare_conditions(
                3, 4, **{**kwargs, "reference_features": distinct}, audio_rows=[0]
            ),
        )
        # One branch at a time, from the same prepared conditions.
        one_by_one = torch.cat(
            [
                backbone(data["sample"][i : i + 1], 7, conditions=skipping.select([i]))
                for i in range(3)
            ]
        )
    assert torch.equal(got_full, expected)
    assert torch.equal(got_skipping, expected)  # dropped audio: exactly the output bias
    torch.testing.assert_close(got_distinct, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(one_by_one, expected, rtol=1e-5, atol=1e-6)
    # The audio matters at all: with audio in row 1 too, row 1 changes.
    with torch.no_grad():
        audio = data["audio"].clone()
        audio[1] = audio[0]
        changed = backbone(
            data["sample"],
            7,
            conditions=backbone.prepare_conditions(3, 4, **{**kwargs, "audio_tokens": audio}),
        )
    assert (changed[1] - expected[1]).abs().max() > 1e-4


def test_batched_and_sequential_guidance_agree_and_repeat(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    batched = _generate(_pipe(tiny_pipe, "batched"), portrait_path, short_speech).frames
    sequential = _generate(_pipe(tiny_pipe, "sequential"), portrait_path, short_speech).frames
    again = _generate(_pipe(tiny_pipe, "sequential"), portrait_path, short_speech).frames
    assert torch.equal(sequential, again)
    torch.testing.assert_close(batched, sequential, rtol=1e-4, atol=1e-5)


def test_pipeline_compile_compiles_the_backbone_in_place(tiny_pipe: EMOPipeline) -> None:
    # Compiled outputs equal eager ones: tests/models/test_backbone_branches.py (fullgraph)
    # and benchmarks/performance.py --only compile; a pipeline run compiled takes minutes.
    import copy

    backbone = copy.deepcopy(tiny_pipe.backbone)
    pipe = EMOPipeline(**{**tiny_pipe.components, "backbone": backbone})
    assert backbone._compiled_call_impl is None
    assert pipe.compile(backend="eager") is pipe
    assert pipe.backbone is backbone and backbone._compiled_call_impl is not None
