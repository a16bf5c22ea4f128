"""Training EMO: data preparation, the three stages over one loop, checkpoints with exact resume.

- :mod:`emo.training.prepare` -- ``emo prepare``: videos -> clips (:mod:`emo.training.data_format`);
- :mod:`emo.training.settings` -- one typed config per stage (``examples/training/``);
- :mod:`emo.training.trainer` -- the loop (``emo train``, ``torchrun -m emo.train``);
- :mod:`emo.training.latents` -- VAE latents cached for frames already prepared;
- :mod:`emo.training.vae` -- a small VAE trained from nothing (models without Stable Diffusion);
- :mod:`emo.training.checkpoints` -- atomic, checksummed checkpoints.

Names are imported lazily: ``import emo.training`` loads no torch.
"""

from __future__ import annotations

from emo._lazy import lazy_getattr

__all__ = [
    "PrepareSettings",
    "TrainResult",
    "TrainingConfig",
    "VAESettings",
    "encode_dataset_latents",
    "load_config",
    "prepare_dataset",
    "train",
    "train_vae",
]

_LAZY = {
    "PrepareSettings": "emo.training.prepare",
    "prepare_dataset": "emo.training.prepare",
    "TrainingConfig": "emo.training.settings",
    "load_config": "emo.training.settings",
    "TrainResult": "emo.training.trainer",
    "train": "emo.training.trainer",
    "VAESettings": "emo.training.vae",
    "encode_dataset_latents": "emo.training.latents",
    "train_vae": "emo.training.vae",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
