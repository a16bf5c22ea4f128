"""One denoiser for pipeline and trainer: guidance's "no reference"/"no audio" == condition dropout."""

from __future__ import annotations

from typing import Any

import torch

from emo.denoiser import drop_rows
from emo.models.reference_net import MotionFeatures
from emo.pipelines.conditioning import prepare_portrait
from emo.pipelines.emo_pipeline import EMOPipeline


def _tiny() -> EMOPipeline:
    return EMOPipeline.from_preset("tiny", face_mask="full")


def test_drop_rows_zeroes_only_the_dropped_samples() -> None:
    x = torch.arange(12.0).reshape(3, 2, 2)
    out = drop_rows(x, torch.tensor([False, True, False]))
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2]) and not out[1].any()
    assert drop_rows(x, None) is x


def test_dropout_in_training_equals_the_unconditional_inputs() -> None:
    pipe = _tiny()
    den = pipe.denoiser
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # Zero-initialised branches would hide any difference: randomise the weights.
        with torch.no_grad():
            for p in den.parameters():
                p.normal_(0, 0.05)
        noisy = torch.randn(2, 4, 3, 16, 16)
        ref = torch.randn(2, 4, 16, 16)
        mask = torch.ones(2, 1, 128, 128)
        audio = torch.randn(2, 3 + 4, 1, 80)
        motion = torch.randn(2, 4, 2, 16, 16)
    t = torch.tensor([10, 500])
    kwargs: dict[str, Any] = {"face_mask": mask, "audio_window": audio, "motion_latents": motion}
    yes, no = torch.tensor([True, True]), torch.tensor([False, False])
    with torch.no_grad():
        dropped = den(
            noisy, t, reference_latent=ref, drop_reference=yes, drop_audio=yes, drop_motion=yes,
            **kwargs,
        )  # fmt: skip
        kept = den(noisy, t, reference_latent=ref, drop_reference=no, drop_audio=no, **kwargs)
        # What the pipeline's "neither" branch and first clip give: a zero reference latent
        # through the ReferenceNet, all-zero audio tokens, zero motion feature maps.
        reference = den.reference_features(torch.zeros_like(ref))
        layers = den.motion_features(motion).layers
        unconditional = den.denoise(
            noisy,
            t,
            face=den.face_features(mask),
            reference=reference,
            audio_tokens=torch.zeros_like(den.audio_tokens(audio)),
            motion=MotionFeatures.zeros({k: v[:, :, 0] for k, v in layers.items()}, num_frames=2),
        )
    torch.testing.assert_close(dropped, unconditional, rtol=1e-5, atol=1e-6)
    assert (dropped - kept).abs().max() > 1e-5  # the conditions matter at all


def test_the_pipeline_guidance_branches_get_the_dropped_inputs() -> None:
    pipe = _tiny()
    pipe.settings = pipe.settings.replace(guidance_batching="batched")
    den = pipe.denoiser
    with torch.no_grad():
        for p in den.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.02)
    seen: list[dict[str, Any]] = []
    hook = pipe.backbone.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append({"args": args, **kwargs}), with_kwargs=True
    )
    try:
        image = torch.full((128, 128, 3), 120, dtype=torch.uint8).numpy()
        audio = torch.sin(torch.arange(4000) / 16000 * 2 * torch.pi * 220).numpy()
        pipe(
            image, audio, audio_rate=16000, num_inference_steps=1, guidance_scale=3.0,
            reference_guidance_scale=2.0, output_type="latent",
        )  # fmt: skip
    finally:
        hook.remove()
    conditions = seen[0]["conditions"]
    assert conditions.audio_tokens is not None and conditions.reference is not None
    tokens = conditions.audio_tokens.reshape(3, -1, *conditions.audio_tokens.shape[1:])
    assert tokens[0].abs().sum() > 0
    assert not tokens[1:].any()  # "reference only" and "neither": dropped audio
    s = pipe.settings
    portrait = prepare_portrait(
        image, pipe.face_mask, height=s.height, width=s.width, crop_scale=s.face_crop_scale
    )
    latent = pipe._encode_image(portrait.image)  # the portrait as the pipeline encodes it
    with torch.no_grad():
        dropped = den.reference_features(latent, torch.tensor([True]))
        kept = den.reference_features(latent)
        dropped_kv = pipe.backbone.project_reference(dropped)
        kept_kv = pipe.backbone.project_reference(kept)
    for key, (keys, values) in conditions.reference.items():
        torch.testing.assert_close(keys[2:3], dropped_kv.layers[key][0])  # "neither"
        torch.testing.assert_close(values[2:3], dropped_kv.layers[key][1])
        torch.testing.assert_close(keys[1:2], kept_kv.layers[key][0])  # "reference only"
        torch.testing.assert_close(values[1:2], kept_kv.layers[key][1])
