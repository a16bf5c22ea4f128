"""Load a diffusers-format Stable Diffusion 1.x UNet into UNet2D, ReferenceNet or Backbone.

A diffusers-format model folder holds ``unet/config.json`` and
``unet/diffusion_pytorch_model.safetensors`` (or ``.bin``). The parameter names
of emo's UNet family equal that layout, so loading is a config translation plus
a checked copy:

- :func:`unet_config_from_diffusers` turns a diffusers UNet config into
  :class:`~emo.models.UNet2D` keyword arguments (unknown bookkeeping keys are
  ignored; features the SD 1.x family does not use raise
  :class:`~emo.errors.ConfigError`);
- :func:`load_sd15_unet_state_dict` reads a folder into ``(config, state_dict)``;
  the single-file importer (:mod:`emo.loaders.single_file`) produces the
  same pair;
- :func:`load_spatial_weights` copies such a state dict into any network of the
  family and reports, by name, the keys of new branches (temporal, audio, speed)
  left at their initialisation and the keys with no place;
- :func:`load_pretrained_unet` does all of it for a path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from emo.configuration import init_arguments, read_json_object
from emo.errors import CheckpointError, ConfigError
from emo.modeling import LoadReport, check_shapes, copy_matching, load_state_dict_file
from emo.models.unet_2d import UNet2D, UNetBase

__all__ = [
    "HEAD_PREFIXES",
    "NEW_BRANCH_MARKERS",
    "build_from_unet_source",
    "find_unet_files",
    "is_new_branch_key",
    "load_pretrained_unet",
    "load_sd15_unet_state_dict",
    "load_spatial_weights",
    "unet_config_from_diffusers",
]

_U = TypeVar("_U", bound=UNetBase)

#: Substrings marking parameters that a plain 2D UNet checkpoint cannot provide.
NEW_BRANCH_MARKERS = (".motion_modules.", ".audio_attn.", ".audio_norm.", "speed_encoder.")
#: Prefixes of the output head (absent from a ReferenceNet).
HEAD_PREFIXES = ("conv_norm_out.", "conv_out.")
#: SD text cross-attention tensors (``norm2``, ``attn2``), not built by ReferenceNet/Backbone.
TEXT_ATTENTION_KEY = re.compile(r"\.transformer_blocks\.\d+\.(attn2|norm2)\.")

# diffusers UNet config keys we accept only at these values (the SD 1.x family's).
_FIXED: dict[str, tuple[Any, ...]] = {
    "act_fn": ("silu",),
    "center_input_sample": (False,),
    "downsample_padding": (1,),
    "mid_block_scale_factor": (1, 1.0),
    "dual_cross_attention": (False,),
    "only_cross_attention": (False,),
    "class_embed_type": (None,),
    "addition_embed_type": (None,),
    "encoder_hid_dim": (None,),
    "encoder_hid_dim_type": (None,),
    "num_class_embeds": (None,),
    "resnet_time_scale_shift": ("default",),
    "resnet_skip_time_act": (False,),
    "resnet_out_scale_factor": (1, 1.0),
    "time_embedding_type": ("positional",),
    "time_embedding_dim": (None,),
    "time_embedding_act_fn": (None,),
    "timestep_post_act": (None,),
    "time_cond_proj_dim": (None,),
    "conv_in_kernel": (3,),
    "conv_out_kernel": (3,),
    "projection_class_embeddings_input_dim": (None,),
    "attention_type": ("default",),
    "class_embeddings_concat": (False,),
    "mid_block_only_cross_attention": (None, False),
    "cross_attention_norm": (None,),
    "addition_time_embed_dim": (None,),
    "reverse_transformer_layers_per_block": (None,),
}
# Keys that only affect numerics or bookkeeping; accepted and ignored.
_IGNORED = {"upcast_attention", "_class_name", "_diffusers_version", "_name_or_path"}


def unet_config_from_diffusers(config: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a diffusers ``UNet2DConditionModel`` config into :class:`~emo.models.UNet2D` kwargs.

    Parameters
    ----------
    config
        The parsed ``unet/config.json`` (or an emo UNet config).

    Returns
    -------
    dict
        Only the keys :class:`~emo.models.UNet2D` takes.

    Raises
    ------
    ConfigError
        If the config uses a feature outside the SD 1.x family (class
        embeddings, other time embeddings, dual cross-attention, ...).
    """
    accepted = init_arguments(UNet2D)
    unsupported = []
    for key, allowed in _FIXED.items():
        value = config.get(key, allowed[0])
        if isinstance(value, (list, tuple)) and key == "only_cross_attention":
            value = any(value)
        if value not in allowed:
            unsupported.append(f"{key}={value!r}")
    cross = config.get("cross_attention_dim", 768)
    if isinstance(cross, (list, tuple)):
        if len(set(cross)) != 1:
            unsupported.append(f"cross_attention_dim={list(cross)!r} (per block)")
        cross = cross[0]
    if unsupported:
        raise ConfigError(
            "this UNet config is outside the Stable Diffusion 1.x family emo supports: "
            + ", ".join(unsupported)
        )
    out = {k: v for k, v in config.items() if k in accepted and not k.startswith("_")}
    out["cross_attention_dim"] = int(cross)
    if out.get("num_attention_heads") is None:
        out.pop("num_attention_heads", None)
    return out


def is_new_branch_key(key: str) -> bool:
    """Whether ``key`` belongs to a branch a 2D UNet checkpoint cannot provide."""
    return any(marker in key or key.startswith(marker) for marker in NEW_BRANCH_MARKERS)


def find_unet_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Locate the config and weights of a UNet.

    Parameters
    ----------
    path
        A diffusers model folder (with a ``unet`` sub-folder), a ``unet`` folder,
        or a weights file with its ``config.json`` beside it.

    Returns
    -------
    tuple of Path
        ``(config.json, weights file)``; the weights are the first present of
        ``diffusion_pytorch_model.safetensors``, ``diffusion_pytorch_model.bin``,
        their ``.fp16`` variants, and emo's ``model.safetensors``.

    Raises
    ------
    CheckpointError
        If no config or no weights file is found.
    """
    where = Path(path)
    if where.is_file():
        config = where.parent / "config.json"
        if not config.is_file():
            raise CheckpointError(
                f"{os.fspath(where)!r} has no config.json beside it; pass the unet folder"
            )
        return config, where
    if not where.is_dir():
        raise CheckpointError(f"UNet path {os.fspath(where)!r} does not exist")
    if (where / "unet").is_dir():
        where = where / "unet"
    config = where / "config.json"
    if not config.is_file():
        raise CheckpointError(
            f"no config.json in {os.fspath(where)!r}; pass a diffusers model folder (with a "
            "'unet' sub-folder) or its 'unet' folder"
        )
    for name in (
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bin",
        "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_pytorch_model.fp16.bin",
        "model.safetensors",
    ):
        if (where / name).is_file():
            return config, where / name
    raise CheckpointError(
        f"no UNet weights in {os.fspath(where)!r} (looked for diffusion_pytorch_model"
        ".safetensors/.bin and model.safetensors)"
    )


def load_sd15_unet_state_dict(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a diffusers-format SD 1.x UNet into ``(config, state_dict)``.

    Parameters
    ----------
    path
        See :func:`find_unet_files`.

    Returns
    -------
    tuple
        :class:`~emo.models.UNet2D` keyword arguments and the tensors, keyed by
        the diffusers (= emo) parameter names.

    Raises
    ------
    CheckpointError
        If files are missing or unreadable.
    ConfigError
        If the config is outside the SD 1.x family.
    """
    config_path, weights_path = find_unet_files(path)
    raw = read_json_object(config_path, error=CheckpointError)
    return unet_config_from_diffusers(raw), load_state_dict_file(weights_path)


def _check_fit(model: UNetBase, state_dict: Mapping[str, torch.Tensor], strict: bool) -> LoadReport:
    """Compare names and shapes (works on the meta device); raise on misfits."""
    own = model.state_dict()
    check_shapes(type(model).__name__, own, state_dict)
    skip_text = not model.builds_text_attention
    skipped = tuple(
        k for k in state_dict if k not in own and skip_text and TEXT_ATTENTION_KEY.search(k)
    )
    report = LoadReport(
        missing_keys=tuple(k for k in own if k not in state_dict),
        unexpected_keys=tuple(k for k in state_dict if k not in own and k not in set(skipped)),
        skipped_keys=skipped,
    )
    if strict:
        has_head = model.conv_out is not None
        bad_missing = [k for k in report.missing_keys if not is_new_branch_key(k)]
        bad_unexpected = [
            k for k in report.unexpected_keys if has_head or not k.startswith(HEAD_PREFIXES)
        ]
        if bad_missing or bad_unexpected:
            shown = LoadReport(tuple(bad_missing), tuple(bad_unexpected)).describe()
            raise CheckpointError(
                f"{type(model).__name__}: the UNet weights do not fit this config: {shown}; "
                "check the config (block_out_channels, layers_per_block, ...) or pass "
                "strict=False"
            )
    return report


def load_spatial_weights(
    model: UNetBase, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
) -> LoadReport:
    """Copy 2D UNet weights into ``model`` (UNet2D, ReferenceNet or Backbone).

    Parameters
    ----------
    model
        The receiving network.
    state_dict
        Tensors in the SD (diffusers) layout.
    strict
        Raise when a parameter other than a new branch (temporal, audio, speed)
        is missing, or a tensor has no place (output-head tensors are dropped
        silently for a model without head).

    Returns
    -------
    LoadReport
        ``missing_keys``: model keys the checkpoint lacked (the new branches, kept
        at their initialisation); ``unexpected_keys``: checkpoint keys with no place
        (the output head for a ReferenceNet included); ``skipped_keys``: the text
        cross-attention (``attn2``, ``norm2``) of the checkpoint, which a ReferenceNet
        and a Backbone do not build.

    Raises
    ------
    CheckpointError
        On any shape mismatch, and (``strict``) on missing spatial or unexpected keys.
    """
    report = _check_fit(model, state_dict, strict)
    copy_matching(model.state_dict(), state_dict)
    return report


def _materialise(
    cls: type[_U],
    kwargs: Mapping[str, Any],
    state: Mapping[str, torch.Tensor],
    strict: bool,
    share: bool,
) -> tuple[_U, LoadReport]:
    """Build on the meta device, adopt the checkpoint tensors, initialise only new branches.

    This skips the random initialisation of the (large) spatial part. Falls back
    to a plain build when spatial weights are missing.
    """
    with torch.device("meta"):
        model = cls(**kwargs)
    report = _check_fit(model, state, strict)
    if any(not is_new_branch_key(k) for k in report.missing_keys):
        model = cls(**kwargs)
        return model, load_spatial_weights(model, state, strict=strict)
    model.reset_new_branches()  # real tensors on the default device
    dtype = torch.get_default_dtype()
    adopted: dict[str, torch.Tensor] = {}
    for key in model.state_dict():
        if key not in state:
            continue
        value = state[key]
        cast = value.to(dtype) if value.is_floating_point() else value
        if not share and cast.data_ptr() == value.data_ptr():
            cast = cast.clone()
        adopted[key] = cast
    model.load_state_dict(adopted, strict=False, assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:  # pragma: no cover - a module without reset support; build the slow way
        model = cls(**kwargs)
        return model, load_spatial_weights(model, state, strict=strict)
    return model, report


def _split_source(source: Any) -> tuple[dict[str, Any], Mapping[str, torch.Tensor]]:
    if isinstance(source, UNetBase):
        return source.config.public(), source.state_dict()
    if isinstance(source, (str, os.PathLike)):
        return load_sd15_unet_state_dict(source)
    if isinstance(source, tuple) and len(source) == 2:
        config, state = source
        return unet_config_from_diffusers(config), state
    if isinstance(source, Mapping):
        return {}, source
    raise CheckpointError(
        f"cannot take UNet weights from a {type(source).__name__}; pass a UNet2D, a "
        "(config, state_dict) pair, a state dict, or a diffusers-format folder"
    )


def build_from_unet_source(
    cls: type[_U], source: Any, *, strict: bool = True, **overrides: Any
) -> tuple[_U, LoadReport]:
    """Build ``cls`` with the config and weights of a 2D UNet.

    Parameters
    ----------
    cls
        :class:`~emo.models.UNet2D`, :class:`~emo.models.ReferenceNet` or
        :class:`~emo.models.Backbone`.
    source
        A network of the family, a ``(config, state_dict)`` pair, a bare state
        dict (config from ``overrides`` and the defaults) or a path (see
        :func:`find_unet_files`).
    strict
        See :func:`load_spatial_weights`.
    **overrides
        Config values of ``cls`` to replace or add (e.g. Backbone-only settings).

    Returns
    -------
    tuple
        The model and the :class:`~emo.modeling.LoadReport`.
    """
    config, state = _split_source(source)
    accepted = init_arguments(cls)
    bad = sorted(k for k in overrides if k not in accepted)
    if bad:
        raise ConfigError(f"{cls.__name__} does not take {bad}; accepted: {sorted(accepted)}")
    kwargs = {k: v for k, v in config.items() if k in accepted}
    kwargs.update(overrides)
    # Tensors read from a path here belong to nobody else and can become the weights.
    owned = isinstance(source, (str, os.PathLike))
    return _materialise(cls, kwargs, state, strict, share=owned)


def load_pretrained_unet(
    path: str | os.PathLike[str],
    cls: type[_U] = UNet2D,  # type: ignore[assignment]
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    strict: bool = True,
    **overrides: Any,
) -> tuple[_U, LoadReport]:
    """Load a diffusers-format SD 1.x UNet folder into ``cls``.

    Parameters
    ----------
    path
        A diffusers model folder, its ``unet`` folder, or a weights file (see
        :func:`find_unet_files`).
    cls
        :class:`~emo.models.UNet2D` (default), :class:`~emo.models.ReferenceNet`
        or :class:`~emo.models.Backbone`.
    dtype
        Cast the model to this dtype after loading.
    device
        Move the model there after loading.
    strict
        See :func:`load_spatial_weights`.
    **overrides
        Config values to replace or add.

    Returns
    -------
    tuple
        The model and the :class:`~emo.modeling.LoadReport` (new-branch keys are
        listed as missing, head keys of a ReferenceNet as unexpected).

    Examples
    --------
    >>> from emo.models import Backbone
    >>> backbone, report = load_pretrained_unet(  # doctest: +SKIP
    ...     "runwayml/stable-diffusion-v1-5", Backbone, audio_cross_attention_dim=768
    ... )
    """
    model, report = build_from_unet_source(cls, path, strict=strict, **overrides)
    if dtype is not None or device is not None:
        model = model.to(device=device, dtype=dtype)
    return model, report
