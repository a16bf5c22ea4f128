"""``ModelMixin``: a :class:`torch.nn.Module` with a config and safetensors persistence."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from emo._meta_loading import assign_weights
from emo._safetensors_io import load_safetensors, write_safetensors
from emo.configuration import ConfigMixin, class_path, import_class, load_config
from emo.errors import CheckpointError, ConfigError, EMOWarning
from emo.io.claim import OutputClaim, make_temporary

__all__ = [
    "WEIGHTS_NAME",
    "LoadReport",
    "ModelMixin",
    "check_shapes",
    "copy_matching",
    "load_state_dict_file",
]

WEIGHTS_NAME = "model.safetensors"

_M = TypeVar("_M", bound="ModelMixin")


@dataclass(frozen=True)
class LoadReport:
    """What happened when a state dict was loaded into a model.

    Attributes
    ----------
    missing_keys
        Model parameters/buffers the checkpoint did not provide (kept at their init).
    unexpected_keys
        Checkpoint tensors the model has no place for (ignored).
    skipped_keys
        Checkpoint tensors left out on purpose because the model does not build those
        layers (e.g. Stable Diffusion's text cross-attention ``attn2``, which EMO's
        ReferenceNet and Backbone do not have). They do not make the load less ``ok``.
    """

    missing_keys: tuple[str, ...] = field(default_factory=tuple)
    unexpected_keys: tuple[str, ...] = field(default_factory=tuple)
    skipped_keys: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when every key matched."""
        return not self.missing_keys and not self.unexpected_keys

    def describe(self, limit: int = 20) -> str:
        """A human-readable list of the mismatched keys (at most ``limit`` of each)."""
        parts = []
        for label, keys in (("missing", self.missing_keys), ("unexpected", self.unexpected_keys)):
            if keys:
                shown = ", ".join(keys[:limit])
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {label} keys: {shown}{more}")
        matched = "; ".join(parts) or "all keys matched"
        if self.skipped_keys:
            matched += f"; {len(self.skipped_keys)} checkpoint keys skipped on purpose"
        return matched


def load_state_dict_file(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file, or a PyTorch ``.bin``/``.pt``/``.ckpt`` file, into a state dict.

    Pickled files are read with ``weights_only=True``; a ``{"state_dict": ...}``
    wrapper (as in Lightning and AnimateDiff checkpoints) is unwrapped.

    Raises
    ------
    CheckpointError
        If the file is missing or cannot be parsed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(
            f"weights file must be a path (str or os.PathLike), got {type(path).__name__}"
        )
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"weights file {os.fspath(file)!r} does not exist")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(os.fspath(file), device=str(device)))
        loaded = torch.load(os.fspath(file), map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights file {os.fspath(file)!r}: {exc}") from exc
    if isinstance(loaded, Mapping) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise CheckpointError(f"{os.fspath(file)!r} does not hold a flat tensor state dict")
    return {str(k): v for k, v in loaded.items()}


def check_shapes(
    what: str, own: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Raise when a tensor of ``state_dict`` has another shape than the model's of that name.

    Parameters
    ----------
    what
        The model's name, for the message.
    own
        The model's state dict (meta tensors work: only shapes are read).
    state_dict
        The checkpoint.

    Raises
    ------
    CheckpointError
        Listing up to ten mismatched names with both shapes.
    """
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"{what}: {len(mismatched)} tensors have the wrong shape (was the checkpoint made "
            f"for another config?): {'; '.join(mismatched[:10])}"
        )


def copy_matching(own: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy the tensors of ``state_dict`` whose names ``own`` has into ``own``, in place."""
    with torch.no_grad():
        for key, value in state_dict.items():
            if key in own:
                own[key].copy_(value)


def _output_folder(directory: Any, what: str) -> Path:
    """Create (if needed) and return the folder ``directory`` to save into."""
    if not isinstance(directory, (str, os.PathLike)):
        raise CheckpointError(
            f"{what}.save_pretrained needs a folder path, got {type(directory).__name__}"
        )
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create the folder {os.fspath(directory)!r} to save {what}: {exc}; "
            "give a writable folder path (not an existing file)"
        ) from exc
    return folder


class ModelMixin(nn.Module, ConfigMixin):
    """Base of every emo network: config capture plus ``save_pretrained``/``from_pretrained``.

    A folder written by :meth:`save_pretrained` holds ``config.json`` (the
    ``__init__`` arguments) and ``model.safetensors`` (the state dict).
    """

    weights_name: ClassVar[str] = WEIGHTS_NAME

    @property
    def device(self) -> torch.device:
        """Device of the first parameter (CPU for a parameter-free module)."""
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the first floating-point parameter (float32 for a parameter-free module)."""
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (works on the meta device)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        Both files are written under temporary names and renamed when complete,
        so an interrupted save never leaves a truncated file behind. The weights
        file is a standard safetensors file whose tensors lie at 64-byte aligned
        offsets, so :meth:`from_pretrained` can use them in place
        (:func:`emo._safetensors_io.write_safetensors`).

        Returns
        -------
        Path
            The folder.
        """
        folder = _output_folder(directory, type(self).__name__)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if any(v.is_meta for v in state.values()):
            raise CheckpointError(f"{type(self).__name__} is on the meta device; nothing to save")
        # Claimed like a video output: a concurrent save of the same folder fails clearly,
        # and what a killed save left (possibly gigabytes) is removed by the next one.
        target = folder / self.weights_name
        with OutputClaim(target, error=CheckpointError):
            tmp = make_temporary(target, error=CheckpointError)
            try:
                write_safetensors(
                    state, tmp, metadata={"format": "pt", "emo_class": class_path(type(self))}
                )
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        self.save_config(folder)
        return folder

    @classmethod
    def from_pretrained(
        cls: type[_M],
        directory: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        strict: bool = True,
        **overrides: Any,
    ) -> _M:
        """Build a model from a folder written by :meth:`save_pretrained`, in eval mode.

        Parameters
        ----------
        directory
            The folder with ``config.json`` and ``model.safetensors``.
        dtype
            Cast floating-point weights to this dtype (default: as saved).
        device
            Where to put the model. ``"meta"`` builds it without allocating or
            reading any weights.
        strict
            Raise :class:`~emo.errors.CheckpointError` on missing or unexpected
            keys; with ``False`` they are reported in an :class:`~emo.errors.EMOWarning`
            and missing ones keep their fresh initialisation.
        **overrides
            Config values to replace.

        Notes
        -----
        The network is built on the meta device and the checkpoint's tensors become
        its parameters: no random initialisation runs, no random number is drawn,
        nothing is copied, and peak memory is the weights' size once. On the CPU the
        file is mapped privately (:mod:`emo._safetensors_io`): pages are read when
        first used, and training the model never changes the file. Replace a saved
        model with :meth:`save_pretrained` (it writes a new file and renames it), not
        by overwriting the file in place while a model loaded from it is alive. A
        checkpoint that lacks keys (``strict=False``) is loaded the plain way: the
        network is initialised, then the weights are copied in.
        """
        if not isinstance(directory, (str, os.PathLike)):
            raise CheckpointError(
                f"{cls.__name__}.from_pretrained needs a folder path, got {type(directory).__name__}"
            )
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ConfigError(
                f"{cls.__name__}.from_pretrained: dtype must be a floating-point torch.dtype "
                f"(torch.float32, torch.float16, torch.bfloat16), got {dtype!r}"
            )
        if device is not None:
            try:
                kind = torch.device(device).type
            except (RuntimeError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{cls.__name__}.from_pretrained: device {device!r} is not a torch device "
                    "('cpu', 'cuda', 'cuda:1', 'mps', ...)"
                ) from exc
            if kind == "cuda" and not torch.cuda.is_available():
                raise ConfigError(
                    f"{cls.__name__}.from_pretrained: device {device!r} asked for, but this "
                    "torch sees no CUDA GPU; use device='cpu'"
                )
        config = load_config(directory, cls.config_name)
        target = cls
        stamped = config.get("_class_name")
        if isinstance(stamped, str) and stamped != class_path(cls):
            found = import_class(stamped, what=f"{os.fspath(directory)!r} ({cls.config_name})")
            if not issubclass(found, cls):
                raise ConfigError(
                    f"{os.fspath(directory)!r} holds a {stamped}, not a {class_path(cls)}"
                )
            target = found
        with torch.device("meta"):
            skeleton = target.from_config(config, **overrides)
        if device is not None and torch.device(device).type == "meta":
            return (skeleton.to(dtype=dtype) if dtype is not None else skeleton).eval()
        weights = Path(directory) / cls.weights_name
        if weights.suffix == ".safetensors" and weights.is_file():
            state = load_safetensors(weights, device=device or "cpu")
        else:
            state = load_state_dict_file(weights, device=device or "cpu")
        report = skeleton.check_weights(state, strict=strict)
        if not report.missing_keys and assign_weights(skeleton, state, dtype=dtype):
            model = skeleton  # the checkpoint's tensors are its parameters: nothing built twice
        else:  # some values only the initialisation gives: build it for real, copy the weights
            del skeleton
            model = target.from_config(config, **overrides)
            model.load_weights(state, strict=strict)
        del state
        if not report.ok:
            warnings.warn(
                f"loading {os.fspath(weights)!r}: {report.describe()}", EMOWarning, stacklevel=2
            )
        if device is not None or dtype is not None:
            model = model.to(device=device, dtype=dtype)
        return model.eval()  # inference by default, as torch.load users expect; .train() to train

    def load_weights(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ) -> LoadReport:
        """Copy ``state_dict`` into this model, checking names and shapes first.

        Raises
        ------
        CheckpointError
            On any shape mismatch, and on missing or unexpected keys when ``strict``.
        """
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(
                f"{type(self).__name__}.load_weights needs a mapping of names to tensors, got "
                f"{type(state_dict).__name__}"
            )
        bad = [str(k) for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(
                f"{type(self).__name__}.load_weights: {len(bad)} values are not tensors "
                f"(e.g. {bad[0]!r}); pass a state dict of tensors"
            )
        report = self.check_weights(state_dict, strict=strict)
        copy_matching(self.state_dict(), state_dict)
        return report

    def check_weights(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ) -> LoadReport:
        """Check that ``state_dict`` fits this model (names and shapes), reading no values.

        Works on the meta device. Returns what :meth:`load_weights` would report.

        Raises
        ------
        CheckpointError
            On any shape mismatch, and on missing or unexpected keys when ``strict``.
        """
        own = self.state_dict()
        check_shapes(type(self).__name__, own, state_dict)
        report = LoadReport(
            missing_keys=tuple(k for k in own if k not in state_dict),
            unexpected_keys=tuple(k for k in state_dict if k not in own),
        )
        if strict and not report.ok:
            raise CheckpointError(
                f"{type(self).__name__}: checkpoint does not fit: {report.describe()}; "
                "pass strict=False to load what fits"
            )
        return report
