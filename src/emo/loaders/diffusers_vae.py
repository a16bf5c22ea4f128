"""Read a diffusers-format Stable Diffusion VAE folder: config translation and weight names.

A diffusers ``vae/`` folder holds ``config.json`` and
``diffusion_pytorch_model.safetensors`` (or ``.bin``, or ``.fp16`` variants).
emo's :class:`~emo.models.vae.AutoencoderKL` uses the same parameter names, so
loading is a config translation (:func:`vae_config_from_diffusers`), a rename
of the attention weights of older checkpoints
(:func:`convert_diffusers_vae_state_dict`) and a checked copy;
:func:`read_diffusers_vae` does the reading and
:meth:`AutoencoderKL.from_diffusers <emo.models.vae.AutoencoderKL.from_diffusers>`
builds the model from it.

Like every importer in :mod:`emo.loaders`, it takes the network class as an
argument and imports no network, so networks may offer these importers as
classmethods without an import circle.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from emo.configuration import init_arguments, read_json_object
from emo.errors import CheckpointError, ConfigError, EMOWarning
from emo.modeling import load_state_dict_file

__all__ = [
    "DIFFUSERS_VAE_WEIGHT_NAMES",
    "build_vae",
    "convert_diffusers_vae_state_dict",
    "load_diffusers_vae",
    "read_diffusers_vae",
    "vae_config_from_diffusers",
]

if TYPE_CHECKING:
    from emo.models.vae import AutoencoderKL

logger = logging.getLogger(__name__)

_V = TypeVar("_V", bound="AutoencoderKL")

#: Weight files of a diffusers ``vae/`` folder, in the order they are looked for.
DIFFUSERS_VAE_WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.fp16.bin",
)
# diffusers config keys that carry nothing for an SD 1.x VAE when at these values.
_HARMLESS_DIFFUSERS_KEYS: dict[str, Any] = {
    "force_upcast": None,  # any value: emo leaves dtype choices to the caller
    "latents_mean": None,
    "latents_std": None,
    "shift_factor": None,
    "norm_type": "group",
    "double_z": True,
}
_LEGACY_ATTENTION_NAMES = {
    "query": "to_q",
    "key": "to_k",
    "value": "to_v",
    "proj_attn": "to_out.0",
}


def convert_diffusers_vae_state_dict(
    state_dict: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Bring an older diffusers VAE state dict to the current attention names.

    Old diffusers checkpoints name the mid-block attention
    ``query``/``key``/``value``/``proj_attn`` (sometimes as 1x1 convolution
    weights); they become ``to_q``/``to_k``/``to_v``/``to_out.0`` linear weights
    ``(c, c)``. Other keys pass through unchanged.

    Parameters
    ----------
    state_dict
        A diffusers-layout ``AutoencoderKL`` state dict.

    Returns
    -------
    dict[str, torch.Tensor]
        The state dict with current names.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if ".mid_block.attentions." in key and len(parts) >= 2:
            name = parts[-2]
            if name in _LEGACY_ATTENTION_NAMES:
                key = ".".join([*parts[:-2], _LEGACY_ATTENTION_NAMES[name], parts[-1]])
            if name != "group_norm" and value.ndim > 2:
                value = value.reshape(value.shape[0], value.shape[1])
        out[key] = value
    return out


def vae_config_from_diffusers(config: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """Translate a diffusers ``vae/config.json`` mapping into ``cls.__init__`` arguments.

    Keys ``cls`` has no use for are dropped (logged at INFO level); keys whose
    value would change the model in a way emo does not implement (e.g. a
    ``shift_factor``, ``latents_mean``) are dropped with an
    :class:`~emo.errors.EMOWarning`.

    Parameters
    ----------
    config
        The parsed ``config.json``.
    cls
        The VAE class (:class:`~emo.models.vae.AutoencoderKL`).

    Returns
    -------
    dict[str, Any]
        Keyword arguments of ``cls`` (lists become tuples).

    Raises
    ------
    ConfigError
        If the config names a class other than ``AutoencoderKL``.
    """
    named = config.get("_class_name")
    if named is not None and named != "AutoencoderKL":
        raise ConfigError(
            f"the config describes a {named!r}, not an AutoencoderKL; point at a Stable "
            "Diffusion 'vae' folder"
        )
    accepted = init_arguments(cls)
    kwargs: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if key in accepted:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        elif key in _HARMLESS_DIFFUSERS_KEYS and (
            key == "force_upcast" or value == _HARMLESS_DIFFUSERS_KEYS[key]
        ):
            dropped.append(key)
        else:
            warnings.warn(
                f"{cls.__name__}: diffusers config key {key}={value!r} is not supported "
                "and is ignored",
                EMOWarning,
                stacklevel=3,
            )
    if dropped:
        logger.info("%s: ignoring diffusers config keys %s", cls.__name__, sorted(dropped))
    if kwargs.get("scaling_factor") is None:
        kwargs.pop("scaling_factor", None)
    return kwargs


def read_diffusers_vae(
    folder: str | os.PathLike[str], cls: type
) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """Read a diffusers VAE folder into ``cls`` arguments, a state dict and the weights' path.

    Parameters
    ----------
    folder
        The ``vae/`` folder, or a Stable Diffusion pipeline folder holding one.
    cls
        The VAE class whose ``__init__`` arguments the config becomes.

    Returns
    -------
    tuple
        ``(config, state_dict, weights_path)``: keyword arguments of ``cls``, the
        tensors with current names, and the file they came from.

    Raises
    ------
    CheckpointError
        If the folder or its weights are missing or unreadable.
    ConfigError
        If ``config.json`` is unreadable or describes another model.
    """
    root = Path(folder)
    if not (root / "config.json").is_file() and (root / "vae" / "config.json").is_file():
        root = root / "vae"
    config_path = root / "config.json"
    if not config_path.is_file():
        raise CheckpointError(
            f"no config.json in {os.fspath(folder)!r} (or its 'vae' sub-folder); point at "
            "a diffusers VAE folder"
        )
    raw = read_json_object(config_path, error=ConfigError)
    weights = next(
        (root / name for name in DIFFUSERS_VAE_WEIGHT_NAMES if (root / name).is_file()), None
    )
    if weights is None:
        raise CheckpointError(
            f"no weights in {os.fspath(root)!r}: expected one of {list(DIFFUSERS_VAE_WEIGHT_NAMES)}"
        )
    config = vae_config_from_diffusers(raw, cls)
    return config, convert_diffusers_vae_state_dict(load_state_dict_file(weights)), weights


def build_vae(
    cls: type[_V],
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    strict: bool = True,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> _V:
    """Build ``cls(**config)``, load ``state_dict`` with checks, move it and set eval mode.

    Parameters
    ----------
    cls
        The VAE class (:class:`~emo.models.vae.AutoencoderKL`).
    config
        Its ``__init__`` arguments.
    state_dict
        Tensors with emo's (= diffusers') names.
    source
        Where the tensors came from, for messages.
    strict
        Raise on missing or unexpected keys; with ``False`` they are reported in an
        :class:`~emo.errors.EMOWarning` instead.
    dtype, device
        Cast / move the loaded model.

    Returns
    -------
    AutoencoderKL
        The model in eval mode; ``model.load_report`` holds the
        :class:`~emo.modeling.LoadReport`.

    Raises
    ------
    CheckpointError
        On a shape mismatch, and (``strict``) on missing or unexpected keys.
    """
    model = cls(**config)
    try:
        report = model.load_weights(state_dict, strict=strict)
    except CheckpointError as exc:
        raise CheckpointError(f"loading {source!r}: {exc}") from exc
    if not report.ok:
        warnings.warn(f"loading {source!r}: {report.describe()}", EMOWarning, stacklevel=4)
    model.load_report = report
    return model.to(device=device, dtype=dtype).eval()


def load_diffusers_vae(
    cls: type[_V],
    folder: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    strict: bool = True,
) -> _V:
    """Load a diffusers-format VAE folder into ``cls`` (see ``AutoencoderKL.from_diffusers``).

    Parameters
    ----------
    cls
        The VAE class (:class:`~emo.models.vae.AutoencoderKL`).
    folder
        The ``vae/`` folder, or a Stable Diffusion pipeline folder holding one.
    dtype, device, strict
        As in :func:`build_vae`.
    """
    config, state, weights = read_diffusers_vae(folder, cls)
    return build_vae(
        cls, config, state, source=os.fspath(weights), strict=strict, dtype=dtype, device=device
    )
