"""What the pipeline feeds the Backbone, checked by value: guidance, audio per clip, motion, speed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.models.conditions import BackboneConditions
from emo.models.reference_net import MotionFeatures
from emo.pipelines.emo_pipeline import EMOPipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def _record_backbone_calls(pipe: EMOPipeline) -> tuple[list[dict[str, Any]], Any]:
    """Record what every Backbone call gets: the sample and its prepared conditions."""
    calls: list[dict[str, Any]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        conditions: BackboneConditions = kwargs["conditions"]
        audio = conditions.audio_tokens
        if audio is not None:  # ((b f), k, d) as the layers read it -> (b, f, k, d)
            audio = audio.reshape(conditions.batch, conditions.frames, *audio.shape[1:]).clone()
        motion = None if conditions.motion is None else MotionFeatures(dict(conditions.motion))
        calls.append(
            {
                "sample": args[0].clone(),
                "conditions": conditions,
                "audio_tokens": audio,
                "motion_features": motion,
            }
        )

    return calls, pipe.backbone.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.fixture(scope="module")
def batched_pipe(tiny_pipe: EMOPipeline) -> EMOPipeline:
    """The tiny pipeline with its guidance branches batched in one Backbone call."""
    pipe = EMOPipeline(**tiny_pipe.components)
    pipe.settings = tiny_pipe.settings.replace(guidance_batching="batched")
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


def test_guide_combines_the_branches_by_the_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    full, ref_only, neither = (torch.randn(1, 4, 3, 2, 2, generator=gen) for _ in range(3))
    both = torch.cat([full, ref_only, neither])
    got = EMOPipeline._guide(both, 3.5, 2.0, True)
    expected = ref_only + 3.5 * (full - ref_only) + 1.0 * (ref_only - neither)
    torch.testing.assert_close(got, expected)
    # Audio guidance only: two branches [full, reference only].
    got = EMOPipeline._guide(both[:2], 3.5, 1.0, False)
    torch.testing.assert_close(got, ref_only + 3.5 * (full - ref_only))
    # Scale 1 everywhere reduces to the full branch; one branch passes through.
    torch.testing.assert_close(EMOPipeline._guide(both, 1.0, 1.0, True), full)
    assert EMOPipeline._guide(full, 7.0, 1.0, False) is full


def test_guidance_branches_are_full_reference_only_neither(
    batched_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    tiny_pipe = batched_pipe
    calls, handle = _record_backbone_calls(tiny_pipe)
    try:
        _generate(tiny_pipe, portrait_path, short_speech, reference_guidance_scale=2.0)
    finally:
        handle.remove()
    first = calls[0]
    assert first["sample"].shape[0] == 3
    audio = first["audio_tokens"]
    assert audio.shape[0] == 3
    assert audio[0].abs().sum() > 0
    assert torch.count_nonzero(audio[1:]) == 0  # the audio is dropped in branches 1 and 2
    assert first["conditions"].audio_rows == (0,)  # so those skip the audio attention
    # The same noisy latents in every branch.
    assert torch.equal(first["sample"][0], first["sample"][1])
    assert torch.equal(first["sample"][0], first["sample"][2])
    # Branches 0 and 1 see the portrait, branch 2 the features of a zero latent (as
    # keys and values of every reference-attention layer, projected once).
    reference = first["conditions"].reference
    ref_latent = tiny_pipe._encode_image(
        np.asarray(_generate(tiny_pipe, portrait_path, short_speech[:800]).portrait)
    )
    with torch.no_grad():
        own = tiny_pipe.backbone.project_reference(tiny_pipe.reference_net(ref_latent, 0))
        blank = tiny_pipe.backbone.project_reference(
            tiny_pipe.reference_net(torch.zeros_like(ref_latent), 0)
        )
    for key, (keys, values) in reference.items():
        assert keys.shape[0] == 3
        for row, source in ((0, own), (1, own), (2, blank)):
            torch.testing.assert_close(keys[row], source.layers[key][0][0])
            torch.testing.assert_close(values[row], source.layers[key][1][0])


def test_each_clip_gets_its_own_audio_frames(
    batched_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    tiny_pipe = batched_pipe
    calls, handle = _record_backbone_calls(tiny_pipe)
    try:
        out = _generate(tiny_pipe, portrait_path, short_speech)
    finally:
        handle.remove()
    clip, steps = tiny_pipe.settings.frames_per_clip, tiny_pipe.settings.num_inference_steps
    m = int(tiny_pipe.audio_projection.config["context_frames"])
    waveform = torch.from_numpy(short_speech)
    frames = out.num_frames
    with torch.no_grad():
        whole = tiny_pipe.audio_encoder.encode(waveform, 16000, num_frames=frames, fps=25.0)
    assert len(calls) == (frames // clip) * steps
    for index in range(frames // clip):
        window = torch.arange(index * clip - m, (index + 1) * clip + m).clamp(0, frames - 1)
        with torch.no_grad():
            expected = tiny_pipe.audio_projection(whole[window][None], padded=True)
        tokens = calls[index * steps]["audio_tokens"][:1]
        torch.testing.assert_close(tokens, expected, rtol=1e-4, atol=1e-5)
        # Every step of a clip sees the same audio.
        assert torch.equal(calls[index * steps + steps - 1]["audio_tokens"][:1], tokens)


def test_first_clip_motion_frames_are_zero_maps_by_default(
    batched_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    tiny_pipe = batched_pipe
    n = tiny_pipe.settings.motion_frames
    calls, handle = _record_backbone_calls(tiny_pipe)
    try:
        out = _generate(tiny_pipe, portrait_path, short_speech)
    finally:
        handle.remove()
    steps, clip = tiny_pipe.settings.num_inference_steps, tiny_pipe.settings.frames_per_clip
    first = calls[0]["motion_features"]
    assert isinstance(first, MotionFeatures) and first.num_frames == n
    assert first.batch_size == 1  # shared by the guidance branches, not copied
    assert all(torch.count_nonzero(v) == 0 for v in first.layers.values())
    # Clip 1's motion frames are clip 0's last n latents through the ReferenceNet.
    second = calls[steps]["motion_features"]
    with torch.no_grad():
        expected = tiny_pipe.reference_net.motion_features(out.frames[:, :, clip - n : clip])
    for key, layer in second.layers.items():
        torch.testing.assert_close(layer, expected.layers[key])

    # The documented alternative: the reference image's latent, repeated.
    pipe = EMOPipeline(**tiny_pipe.components)
    pipe.settings = tiny_pipe.settings.replace(first_clip_motion="reference")
    pipe.set_progress_bar_config(disable=True)
    calls, handle = _record_backbone_calls(pipe)
    try:
        _generate(pipe, portrait_path, short_speech)
    finally:
        handle.remove()
    ref_latent = pipe._encode_image(out.portrait)
    with torch.no_grad():
        own = pipe.reference_net(ref_latent, 0)
    for key, layer in calls[0]["motion_features"].layers.items():
        for i in range(n):
            torch.testing.assert_close(layer[:, :, i], own.layers[key])


def test_speed_enters_rescaled_to_the_reference_fps(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    backbone = copy.deepcopy(tiny_pipe.backbone)
    pipe = EMOPipeline(**{**tiny_pipe.components, "backbone": backbone})
    pipe.set_progress_bar_config(disable=True)
    embeddings: list[torch.Tensor] = []
    encoder = backbone.speed_encoder
    assert encoder is not None
    handle = encoder.register_forward_hook(lambda m, a, out: embeddings.append(out.clone()))
    track = np.linspace(0.0, 1.5, 40)
    try:
        out25 = _generate(pipe, portrait_path, short_speech, head_motion_speed=track)
        embeddings_25 = list(embeddings)
        embeddings.clear()
        out50 = _generate(pipe, portrait_path, short_speech, head_motion_speed=track / 2, fps=50.0)
    finally:
        handle.remove()
    clip = pipe.settings.frames_per_clip
    m = encoder.context_frames
    frames = out25.num_frames
    values = torch.tensor(track[:frames], dtype=torch.float32)
    with torch.no_grad():
        for index in range(frames // clip):
            # Each clip's window reaches m real frames into its neighbours (clamped at the ends).
            window = torch.arange(index * clip - m, (index + 1) * clip + m).clamp(0, frames - 1)
            expected = encoder(values[window][None], padded=True)
            # Embedded once per clip (not at every step).
            torch.testing.assert_close(embeddings_25[index][:1], expected)
        assert len(embeddings_25) == frames // clip
        # At 50 fps, half the degrees per frame is the same angular speed: the same codes.
        torch.testing.assert_close(embeddings[0][:1], embeddings_25[0][:1])
    assert out50.num_frames == 2 * frames


def test_denoiser_drops_motion_to_zero_feature_maps(tiny_pipe: EMOPipeline) -> None:
    # Training's "no previous frames" is the same input as the pipeline's first clip.
    from emo.denoiser import EMODenoiser

    denoiser = EMODenoiser(
        tiny_pipe.reference_net,
        tiny_pipe.backbone,
        tiny_pipe.face_locator,
        tiny_pipe.audio_projection,
    )
    latents = torch.randn(2, 4, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        motion = denoiser.motion_features(latents, torch.tensor([True, False]))
        kept = tiny_pipe.reference_net.motion_features(latents[1:])
    assert isinstance(motion, MotionFeatures) and motion.batch_size == 2
    for key, layer in motion.layers.items():
        assert torch.count_nonzero(layer[0]) == 0
        torch.testing.assert_close(layer[1:], kept.layers[key])


def test_denoiser_rescales_speed_from_the_data_fps(tiny_pipe: EMOPipeline) -> None:
    # Training data prepared at 50 fps holds half the degrees per frame of the same head
    # motion at 25 fps: with speed_fps it reaches the speed layers as the same speed.
    from emo.denoiser import EMODenoiser

    backbone = copy.deepcopy(tiny_pipe.backbone)
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if "speed_attention.to_out" in name or "temporal_transformer.proj_out" in name:
                param.normal_(0.0, 0.05)
    denoiser = EMODenoiser(
        tiny_pipe.reference_net, backbone, tiny_pipe.face_locator, tiny_pipe.audio_projection
    )
    gen = torch.Generator().manual_seed(4)
    kwargs = {
        "reference_latent": torch.randn(1, 4, 4, 4, generator=gen),
        "face_mask": torch.ones(1, 1, 32, 32),
    }
    noisy, t = torch.randn(1, 4, 4, 4, 4, generator=gen), torch.tensor([500])
    speed = torch.tensor([[0.2, 0.6, 1.0, 1.4]])
    with torch.no_grad():
        at_25 = denoiser(noisy, t, speed=speed, **kwargs)
        at_50 = denoiser(noisy, t, speed=speed / 2, speed_fps=50.0, **kwargs)
        unscaled = denoiser(noisy, t, speed=speed / 2, **kwargs)
    torch.testing.assert_close(at_50, at_25)
    assert (unscaled - at_25).abs().max() > 1e-4
