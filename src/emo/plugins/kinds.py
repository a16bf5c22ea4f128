"""The four plugin kinds: entry-point group, contract, and where their types live."""

from __future__ import annotations

from dataclasses import dataclass

from emo.errors import InputError

__all__ = ["KINDS", "KindSpec", "normalize_kind"]


@dataclass(frozen=True)
class KindSpec:
    """Everything the registry needs to know about one plugin kind.

    Attributes
    ----------
    kind
        Short name used in the API (``"scheduler"``).
    group
        Entry-point group third-party packages declare plugins under.
    methods
        Callables a plugin class (and instance) must have.
    attributes
        Attributes an instance must have (may be set in ``__init__``).
    protocol
        ``"module:Name"`` of the kind's :class:`typing.Protocol`, for messages and docs.
    base
        ``"module:Name"`` of the kind's ABC base class.
    """

    kind: str
    group: str
    methods: tuple[str, ...]
    attributes: tuple[str, ...]
    protocol: str
    base: str


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            kind="audio_encoder",
            group="emo.audio_encoders",
            methods=("encode",),
            attributes=("sample_rate", "feature_dim", "num_layers"),
            protocol="emo.audio.base:AudioEncoder",
            base="emo.audio.base:AudioEncoderBase",
        ),
        KindSpec(
            kind="scheduler",
            group="emo.schedulers",
            methods=("set_timesteps", "scale_model_input", "step", "add_noise"),
            attributes=("order", "init_noise_sigma", "timesteps"),
            protocol="emo.schedulers.base:Scheduler",
            base="emo.schedulers.base:SchedulerBase",
        ),
        KindSpec(
            kind="face_mask",
            group="emo.face_masks",
            methods=("__call__",),
            attributes=(),
            protocol="emo.face_masks.base:FaceMask",
            base="emo.face_masks.base:FaceMaskBase",
        ),
        KindSpec(
            kind="video_writer",
            group="emo.video_writers",
            methods=("can_write", "open", "write"),
            attributes=(),
            protocol="emo.io.writers.base:VideoWriter",
            base="emo.io.writers.base:VideoWriterBase",
        ),
    )
}

_ALIASES = {spec.group.split(".", 1)[1]: spec.kind for spec in KINDS.values()}


def normalize_kind(kind: str) -> KindSpec:
    """Return the :class:`KindSpec` for ``kind`` (``"scheduler"``, ``"schedulers"``, ``"emo.schedulers"``).

    Raises
    ------
    InputError
        If ``kind`` is not one of the four kinds (a ``ValueError`` too).
    """
    if not isinstance(kind, str):
        raise InputError(f"plugin kind must be a str, one of {sorted(KINDS)}; got {kind!r}")
    key = kind.strip().lower().replace("-", "_")
    key = key.removeprefix("emo.")
    key = _ALIASES.get(key, key)
    try:
        return KINDS[key]
    except KeyError:
        raise InputError(f"unknown plugin kind {kind!r}; kinds are {sorted(KINDS)}") from None
