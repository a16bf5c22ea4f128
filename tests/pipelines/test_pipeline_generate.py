"""End-to-end generation with the tiny preset (random weights) on the CPU."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from emo.errors import AudioError, ImageError, InputError
from emo.pipelines.emo_pipeline import EMOPipeline


def _expected_frames(path: Path, fps: float) -> int:
    info = sf.info(str(path))
    return math.ceil(info.frames * fps / info.samplerate)


def test_portrait_and_speech_to_mp4_with_audio(
    tiny_pipe: EMOPipeline, portrait_path: Path, speech_path: Path, tmp_path: Path
) -> None:
    out_path = tmp_path / "talk.mp4"
    out = tiny_pipe(
        portrait_path,
        speech_path,
        generator=torch.Generator().manual_seed(0),
        output_path=out_path,
    )
    assert isinstance(out, __import__("emo").EMOPipelineOutput)
    expected = _expected_frames(speech_path, 25.0)
    assert out.num_frames == expected and out.frames is None and out.path == out_path
    assert expected > 3 * tiny_pipe.settings.frames_per_clip  # several clips: motion frames used
    with av.open(str(out_path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video))
        assert (video.codec_context.width, video.codec_context.height) == (32, 32)
        video_seconds = float(video.duration * video.time_base)
        audio_seconds = float(audio.duration * audio.time_base)
    assert frames == expected
    assert abs(audio_seconds - video_seconds) <= 1.0 / 25.0 + 1e-3
    assert not [p for p in tmp_path.iterdir() if p.name != "talk.mp4"]  # no temp file left


def test_same_seed_same_video_different_seed_different_video(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    def run(seed: int, **kwargs: Any) -> Any:
        return tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            generator=torch.Generator().manual_seed(seed),
            **kwargs,
        ).frames

    a, b, c = run(1), run(1), run(2)
    assert a.shape == (16, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    as_np = run(1, output_type="np")
    np.testing.assert_array_equal(as_np, a.permute(0, 2, 3, 1).numpy())
    latents = run(1, output_type="latent")
    assert latents.shape[2] == a.shape[0]


def test_reference_features_are_computed_once_per_generation(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    calls: list[int] = []
    # Every ReferenceNet pass (reference features or motion features) runs conv_in once.
    handle = tiny_pipe.reference_net.conv_in.register_forward_hook(
        lambda module, args, output: calls.append(int(args[0].shape[0]))
    )
    try:
        out = tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            reference_guidance_scale=1.5,
            output_type="latent",
        )
    finally:
        handle.remove()
    clips = math.ceil(out.num_frames / tiny_pipe.settings.frames_per_clip)
    # One call for the reference (with its "no reference" guidance branch), one per clip
    # after the first for the motion frames (the first clip's are zero maps); none per
    # denoising step.
    assert len(calls) == 1 + clips - 1
    assert calls[0] == 2 and set(calls[1:]) == {tiny_pipe.settings.motion_frames}


def test_step_callback_sees_and_replaces_latents(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    seen: list[tuple[int, int]] = []

    def zero_last_step(
        pipe: EMOPipeline, step: int, t: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        seen.append((kwargs["clip_index"], step))
        if step == pipe.settings.num_inference_steps - 1:
            return {"latents": torch.zeros_like(kwargs["latents"])}
        return {}

    out = tiny_pipe(
        portrait_path,
        short_speech,
        audio_rate=16000,
        output_type="latent",
        callback_on_step_end=zero_last_step,
    )
    assert torch.count_nonzero(out.frames) == 0
    clips = math.ceil(out.num_frames / tiny_pipe.settings.frames_per_clip)
    assert len(seen) == clips * tiny_pipe.settings.num_inference_steps


def test_head_motion_speed_reaches_the_speed_layers(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    backbone = copy.deepcopy(tiny_pipe.backbone)
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if "speed_attention.to_out" in name or "temporal_transformer.proj_out" in name:
                param.fill_(0.05)
    pipe = EMOPipeline(**{**tiny_pipe.components, "backbone": backbone})
    pipe.set_progress_bar_config(disable=True)

    def run(speed: Any) -> Any:
        return pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            head_motion_speed=speed,
            output_type="latent",
            generator=torch.Generator().manual_seed(0),
        ).frames

    varying = run(np.linspace(0.0, 2.0, 16))
    assert varying.shape[2] == 16
    assert not torch.equal(varying, run(0.0))
    assert torch.equal(run(0.5), run([0.5] * 20))  # a constant equals a per-frame track of it
    with pytest.raises(InputError, match="one speed per frame"):
        run([0.1, 0.2])
    with pytest.raises(InputError, match=">= 0"):
        run(-1.0)


def test_bad_inputs_raise_emo_errors_and_leave_no_file(
    tiny_pipe: EMOPipeline, portrait_path: Path, speech_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(ImageError, match="missing.png"):
        tiny_pipe(tmp_path / "missing.png", speech_path, output_path=target)
    with pytest.raises(AudioError, match="missing.wav"):
        tiny_pipe(portrait_path, tmp_path / "missing.wav", output_path=target)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    with pytest.raises(AudioError):
        tiny_pipe(portrait_path, not_audio, output_path=target)
    with pytest.raises(InputError, match="multiples"):
        tiny_pipe(portrait_path, speech_path, height=30)
    assert not target.exists()


def test_interrupted_generation_keeps_existing_file(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous video")

    def interrupt(pipe: EMOPipeline, step: int, t: Any, kwargs: dict[str, Any]) -> None:
        if kwargs["clip_index"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            output_path=target,
            callback_on_step_end=interrupt,
        )
    assert target.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_any_image_size_rgba_and_grayscale(tiny_pipe: EMOPipeline) -> None:
    rng = np.random.default_rng(0)
    wide_rgba = rng.integers(0, 255, size=(40, 90, 4), dtype=np.uint8)
    gray = rng.integers(0, 255, size=(70, 50), dtype=np.uint8)
    tone = np.sin(np.arange(3200) / 5.0).astype(np.float32)
    for image in (wide_rgba, gray):
        out = tiny_pipe(image, tone, audio_rate=16000, output_type="latent")
        assert out.portrait.shape == (32, 32, 3)


def test_silent_and_one_frame_audio(tiny_pipe: EMOPipeline, portrait_path: Path) -> None:
    silent = np.zeros(4000, dtype=np.float32)
    out = tiny_pipe(portrait_path, silent, audio_rate=16000, output_type="latent")
    assert out.num_frames == 7  # ceil(0.25 s * 25 fps)
    one_frame = np.full(100, 0.1, dtype=np.float32)
    out = tiny_pipe(portrait_path, one_frame, audio_rate=16000, output_type="pt")
    assert out.num_frames == 1 and out.frames.shape == (1, 3, 32, 32)
    with pytest.raises(AudioError, match="source_rate"):
        tiny_pipe(portrait_path, silent)


def test_more_bad_inputs_no_face_corrupt_image_empty_audio_unwritable_path(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    from skimage import data

    from emo.errors import FaceNotFoundError, VideoError

    auto = EMOPipeline(**{**tiny_pipe.components, "face_mask": "auto"})
    auto.set_progress_bar_config(disable=True)
    target = tmp_path / "out.mp4"
    with pytest.raises(FaceNotFoundError, match="box"):
        auto(data.rocket(), short_speech, audio_rate=16000, output_path=target)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    with pytest.raises(ImageError, match="corrupt"):
        tiny_pipe(corrupt, short_speech, audio_rate=16000, output_path=target)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        tiny_pipe(portrait_path, empty, output_path=target)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(VideoError):
        tiny_pipe(portrait_path, short_speech, audio_rate=16000, output_path=blocker / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "corrupt.png",
        "empty.wav",
        "not-a-folder",
    ]


def test_given_latents_equal_the_generator_noise(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    clip = tiny_pipe.settings.frames_per_clip
    gen = torch.Generator().manual_seed(5)
    noise = torch.cat([torch.randn(1, 4, clip, 4, 4, generator=gen) for _ in range(16 // clip)], 2)
    common = {"audio_rate": 16000, "output_type": "latent"}
    from_latents = tiny_pipe(portrait_path, short_speech, latents=noise, **common).frames
    from_seed = tiny_pipe(
        portrait_path, short_speech, generator=torch.Generator().manual_seed(5), **common
    ).frames
    assert torch.equal(from_latents, from_seed)
    with pytest.raises(InputError, match="latents must be"):
        tiny_pipe(portrait_path, short_speech, latents=noise[:, :, :3], **common)


def test_to_bfloat16_generates(portrait_path: Path, short_speech: np.ndarray) -> None:
    pipe = EMOPipeline.from_preset("tiny", face_mask="full").to(dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.dtype == torch.bfloat16 and pipe.vae.dtype == torch.bfloat16
    out = pipe(
        portrait_path,
        short_speech[:3200],
        audio_rate=16000,
        height=32,
        width=32,
        num_inference_steps=1,
        frames_per_clip=4,
        motion_frames=2,
    )
    assert out.frames.shape == (5, 3, 32, 32) and out.frames.dtype == torch.float32
    assert torch.isfinite(out.frames).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"height": 0},
        {"height": "a"},
        {"height": -8},
        {"fps": 0},
        {"fps": float("nan")},
        {"num_inference_steps": 0},
        {"frames_per_clip": 0},
        {"motion_frames": -1},
        {"guidance_scale": "a"},
        {"guidance_scale": float("nan")},
        {"generator": "seed"},
        {"latents": np.zeros((1, 4, 16, 4, 4), np.float32)},
        {"latents": torch.zeros(1, 3, 16, 4, 4)},
        {"output_path": ""},
        {"output_type": "gif"},
    ],
    ids=lambda kwargs: "-".join(f"{k}={v!r}"[:30] for k, v in kwargs.items()),
)
def test_bad_call_arguments_are_input_errors(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InputError):
        tiny_pipe(portrait_path, short_speech, audio_rate=16000, **kwargs)


@pytest.mark.parametrize("returned", [5, {"latents": "x"}, {"latents": torch.zeros(1)}])
def test_bad_callback_results_are_input_errors(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, returned: Any
) -> None:
    with pytest.raises(InputError, match="callback_on_step_end"):
        tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            output_type="latent",
            callback_on_step_end=lambda *args: returned,
        )


def test_face_region_reaches_the_backbone(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    from emo.face_masks.simple import BoxMask

    trained = copy.deepcopy(tiny_pipe.face_locator)
    with torch.no_grad():
        trained.conv_out.weight.normal_(0.0, 0.1)
    face_mask = BoxMask(box=[0.3, 0.3, 0.7, 0.7])
    pipe = EMOPipeline(**{**tiny_pipe.components, "face_locator": trained, "face_mask": face_mask})
    pipe.set_progress_bar_config(disable=True)
    masks: list[torch.Tensor] = []
    samples: list[torch.Tensor] = []
    hooks = [
        trained.register_forward_pre_hook(lambda _m, args: masks.append(args[0].clone())),
        pipe.backbone.register_forward_pre_hook(lambda _m, args: samples.append(args[0].clone())),
    ]
    clip = pipe.settings.frames_per_clip
    noise = torch.randn(1, 4, clip, 4, 4, generator=torch.Generator().manual_seed(1))
    try:
        pipe(
            portrait_path,
            short_speech[: 16000 * clip // 25],
            audio_rate=16000,
            latents=noise,
            output_type="latent",
        )
    finally:
        for hook in hooks:
            hook.remove()
    # The FaceLocator sees the box: ones well inside it, zeros well outside.
    (mask,) = masks  # (1, 1, 1, H, W): one pass per generation
    size = pipe.settings.height
    inner, outer = slice(int(0.35 * size), int(0.65 * size)), slice(0, int(0.25 * size))
    assert torch.all(mask[..., inner, inner] == 1) and torch.all(mask[..., outer, :] == 0)
    # At the first step every guidance branch and frame gets exactly noise + its features.
    with torch.no_grad():
        expected = trained(mask)  # (1, c, 1, h, w)
    added = samples[0] - noise
    assert expected.abs().amax() > 0.01
    torch.testing.assert_close(added, expected.expand_as(added), rtol=1e-5, atol=1e-6)


def test_audio_and_portrait_reach_the_backbone(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    backbone = copy.deepcopy(tiny_pipe.backbone)
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if "audio_attn.to_out" in name:
                param.normal_(0.0, 0.05)
    pipe = EMOPipeline(**{**tiny_pipe.components, "backbone": backbone})
    pipe.set_progress_bar_config(disable=True)

    def run(image: Any, audio: np.ndarray) -> torch.Tensor:
        out = pipe(
            image,
            audio,
            audio_rate=16000,
            output_type="latent",
            generator=torch.Generator().manual_seed(0),
        )
        return out.frames  # type: ignore[no-any-return]

    speech = run(portrait_path, short_speech)
    assert not torch.equal(speech, run(portrait_path, np.zeros_like(short_speech)))
    gray = np.full((64, 64, 3), 128, np.uint8)
    assert not torch.equal(speech, run(gray, short_speech))
