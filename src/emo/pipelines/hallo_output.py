"""The from-files generation of :class:`~emo.pipelines.hallo_pipeline.HalloPipeline`.

Inputs (:mod:`emo.pipelines.hallo_inputs`) -> clips (:class:`~emo.pipelines.hallo_sampler.HalloSampler`)
-> frames: Hallo's ``uint8(x * 255)`` (truncation, as its writer does) -> the invisible mark
-> a video writer streaming clip by clip, the source audio muxed and the label set (and the
file signed when Content Credentials are asked for). Memory is one clip whatever the length.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from emo import plugins
from emo.errors import InputError

__all__ = ["write_hallo_video"]


def _frames(video: torch.Tensor, keep: int) -> torch.Tensor:
    """``(1, 3, f, H, W)`` in ``[0, 1]`` -> uint8 ``(keep, H, W, 3)``, truncating as Hallo's writer."""
    frames = rearrange(video[0, :, :keep], "c f h w -> f h w c")
    return (frames * 255).clamp(0, 255).to(torch.uint8).cpu()


def write_hallo_video(
    pipe: Any,
    image: Any,
    audio: Any,
    *,
    output_path: str | os.PathLike[str] | None,
    generator: torch.Generator | None,
    audio_rate: int | None,
    size: int | None,
    num_inference_steps: int | None,
    guidance_scale: float | None,
    face_embedding: torch.Tensor | None,
    masks: Any,
    landmarks: Any,
    vocal_separation: bool | None,
    writer: Any,
    watermark: Any,
    content_credentials: Any,
    output_type: str | None,
) -> Any:
    """See :meth:`HalloPipeline.__call__ <emo.pipelines.hallo_pipeline.HalloPipeline.__call__>`."""
    from tqdm.auto import tqdm

    from emo.pipelines.emo_pipeline import EMOPipelineOutput
    from emo.pipelines.hallo_inputs import prepare_hallo_inputs
    from emo.pipelines.input_checks import check_generation_inputs
    from emo.pipelines.mux_audio import audio_for_mux
    from emo.provenance.stamp import GenerationStamp

    settings = pipe.settings
    if output_path is not None and not str(output_path).strip():
        raise InputError("output_path is empty; give a file name such as 'out.mp4'")
    if output_type not in (None, "pt"):
        raise InputError(f"output_type must be 'pt' or None, got {output_type!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputError(
            f"generator must be a torch.Generator, got {type(generator).__name__}; "
            "e.g. torch.Generator().manual_seed(0)"
        )
    if generator is None:
        generator = torch.Generator().manual_seed(int(settings.seed))
    keep_frames = output_type == "pt" or output_path is None
    size = int(size or settings.height)
    fps = float(settings.fps)
    frames_per_clip = int(settings.frames_per_clip)
    check_generation_inputs(image, audio, width=size, height=size, audio_rate=audio_rate)
    inputs = prepare_hallo_inputs(
        pipe,
        image,
        audio,
        audio_rate=audio_rate,
        size=size,
        fps=fps,
        frames_per_clip=frames_per_clip,
        face_embedding=face_embedding,
        masks=masks,
        landmarks=landmarks,
        vocal_separation=vocal_separation,
    )
    stamp = GenerationStamp.for_generation(
        watermark,
        portrait=inputs.portrait,
        waveform=inputs.waveform,
        seed=generator.initial_seed(),
        settings=settings,
        content_credentials=content_credentials if output_path is not None else False,
        model_name=pipe.name_or_path,
        model_modules=[(name, getattr(pipe, name)) for name in pipe.model_components],
        inputs={"portrait": image, "audio": audio},
    )
    clips = pipe.generate_from_conditions(
        inputs.conditions,
        generator=generator,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
    )
    total = -(-inputs.num_frames // frames_per_clip)
    progress = tqdm(total=total, **{"desc": "hallo", "unit": "clip", **pipe._progress_config})
    kept: list[torch.Tensor] = []
    written = 0
    path: Path | None = None

    def frames_of(clip: Any) -> torch.Tensor:
        nonlocal written
        frames = stamp.mark(_frames(clip.video, min(frames_per_clip, inputs.num_frames - written)))
        written += int(frames.shape[0])
        progress.update(1)
        return frames

    try:
        if output_path is not None:
            path = Path(output_path)
            video_writer = (
                plugins.create("video_writer", writer)
                if writer is not None
                else _writer_for_path(path)
            )
            with (
                audio_for_mux(video_writer, audio, audio_rate=audio_rate, mux_sample_rate=None) as (
                    mux_audio,
                    mux_rate,
                ),
                video_writer.open(
                    path, fps=fps, width=size, height=size, audio=mux_audio, sample_rate=mux_rate
                ) as session,
            ):
                stamp.label_session(session)
                for clip in clips:
                    frames = frames_of(clip)
                    session.write(frames)
                    if keep_frames:
                        kept.append(frames)
        else:
            kept.extend(frames_of(clip) for clip in clips)
    finally:
        progress.close()
    return EMOPipelineOutput(
        frames=torch.cat(kept) if kept else None,
        fps=fps,
        num_frames=inputs.num_frames,
        path=path,
        portrait=inputs.portrait,
    )


def _writer_for_path(path: Path) -> Any:
    from emo.io.writers import writer_for_path

    return writer_for_path(path)
