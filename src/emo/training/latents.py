"""Cache VAE latents for a data set that ``emo prepare`` already wrote.

``emo prepare --vae`` decodes every video again to encode its latents. When the frames
are already prepared (the usual order: prepare, train a VAE on the frames, then cache
latents), :func:`encode_dataset_latents` reads the prepared frames instead: no video
decoding, no face search, and the encoding can run on a GPU in large batches.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from emo.errors import InputError
from emo.training.devices import resolve_device

__all__ = ["encode_dataset_latents"]


def encode_dataset_latents(
    data_root: str | os.PathLike[str],
    output: str | os.PathLike[str],
    vae: str | os.PathLike[str],
    *,
    device: str = "cpu",
    batch_size: int = 64,
) -> int:
    """Write a copy of a prepared data set with every frame's VAE latents added.

    The copy is what ``emo prepare --vae VAE`` would write from the same videos: each
    clip file gains ``latents`` ``(f, c, h/s, w/s)`` (the latent distribution's mode
    times the VAE's scaling factor, float32), and ``dataset.json`` records the VAE
    (config, SHA-256, scaling factor) so training checks it is the one in the pipeline.
    Clips already written to ``output`` are kept (an interrupted run resumes).

    Parameters
    ----------
    data_root
        A folder written by ``emo prepare`` (with frames).
    output
        The new data folder (created).
    vae
        A VAE folder, or a pipeline folder holding ``vae/``.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    batch_size
        Frames encoded at once.

    Returns
    -------
    int
        The number of clips written.

    Raises
    ------
    InputError
        If ``data_root`` is not a prepared data set, already holds latents of another
        VAE in ``output``, or its frames do not fit the VAE.
    """
    from emo.training.data_format import (
        clip_metadata,
        read_clip,
        read_clip_index,
        read_dataset_info,
        write_clip,
        write_dataset_info,
    )
    from emo.training.prepare import _encode_latents, _latents_info, _load_vae

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    source, out = Path(data_root), Path(output)
    if source.resolve() == out.resolve():
        raise InputError("encode_dataset_latents writes a new folder: give another output")
    info = read_dataset_info(source)
    rows = read_clip_index(source)
    model = _load_vae(os.fspath(vae)).to(resolve_device(device, "encode_dataset_latents"))
    factor = 2 ** (len(model.config["block_out_channels"]) - 1)
    if int(info["resolution"]) % factor:
        raise InputError(
            f"{os.fspath(source)!r} holds {info['resolution']} px frames, not a multiple of the "
            f"VAE's downscale factor {factor}"
        )
    latents_info = _latents_info(model)
    new_info = {
        **info,
        "settings": {**info["settings"], "vae": os.fspath(vae)},
        "latents": latents_info,
    }
    if (out / "dataset.json").is_file():
        old = read_dataset_info(out)
        if (old.get("latents") or {}).get("vae_sha256") != latents_info["vae_sha256"]:
            raise InputError(
                f"{os.fspath(out)!r} already holds latents of another VAE; use a new folder"
            )
    (out / "clips").mkdir(parents=True, exist_ok=True)
    write_dataset_info(out, json_safe(new_info))
    for row in rows:
        target = out / "clips" / f"{row['id']}.safetensors"
        if target.is_file():
            continue
        tensors = read_clip(source / "clips" / f"{row['id']}.safetensors")
        if "frames" not in tensors:
            raise InputError(f"clip {row['id']!r} of {os.fspath(source)!r} holds no frames")
        tensors["latents"] = _encode_latents(model, tensors["frames"], batch_size)
        write_clip(target, tensors, clip_metadata(row))
    for name in ("clips.jsonl", "skipped.jsonl"):
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    return len(rows)


def json_safe(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` through JSON and back (tuples become lists, as a reader sees them)."""
    import json

    return json.loads(json.dumps(info, default=str))  # type: ignore[no-any-return]
