"""Hallo's released weights (``pretrained_models/``) as emo networks.

Hallo (Fudan, 2024, MIT licence) ships one ``hallo/net.pth`` holding every trained
weight of its five networks, keyed ``reference_unet.``, ``denoising_unet.``,
``face_locator.``, ``imageproj.`` and ``audioproj.``; the Stable Diffusion 1.5 UNet
config next to it gives the UNet geometry, ``sd-vae-ft-mse/`` the VAE and
``wav2vec/wav2vec2-base-960h/`` the audio encoder. This module builds emo's own
networks configured as Hallo's (see ``docs/guide/hallo.md``) and places every key
of ``net.pth``; nothing is left out and nothing is guessed. The configuration is
read from the files (the UNet config, the tensor shapes, the wav2vec2 config), never
from the sizes of one particular release.

``net.pth`` is a pickle: it is read with ``torch.load(weights_only=True)``, which
refuses anything but tensors. Saving the loaded pipeline writes an ordinary emo
folder (safetensors) that loads without it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emo.errors import CheckpointError, ConfigError
from emo.modeling import LoadReport, load_state_dict_file

__all__ = [
    "HALLO_PREFIXES",
    "HalloNetworks",
    "find_hallo_root",
    "hallo_audio_encoder",
    "hallo_configs",
    "hallo_network_classes",
    "hallo_network_configs",
    "load_hallo_networks",
    "motion_heads",
]

#: The five networks of Hallo's ``net.pth``, by key prefix -> emo component name.
HALLO_PREFIXES = {
    "reference_unet": "reference_net",
    "denoising_unet": "backbone",
    "face_locator": "face_locator",
    "imageproj": "face_projection",
    "audioproj": "audio_projection",
}

#: Hallo's motion modules use 8 heads (configs/unet/unet.yaml). A head count is not
#: visible in the weights: :func:`motion_heads` reads it from Hallo's configuration when
#: one lies beside ``pretrained_models`` and falls back to this value.
HALLO_MOTION_HEADS = 8
_HEADS_PATTERN = re.compile(
    r"motion_module_kwargs:(?:\n[ \t]+[^\n]*)*?\n[ \t]+num_attention_heads:\s*(\d+)"
)


def motion_heads(root: Path) -> int:
    """The motion modules' head count from Hallo's configuration beside ``root``.

    Looked up, in order: ``hallo_config.json`` (a JSON dump of the inference settings,
    as in emo's golden test data) in ``root`` or its parent, then Hallo's own
    ``configs/inference/default.yaml`` or ``configs/unet/unet.yaml`` in the parent (a
    Hallo checkout keeps ``pretrained_models/`` at its top). Default: 8.
    """
    for folder in (root, root.parent):
        path = folder / "hallo_config.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                kwargs = data["unet_additional_kwargs"]["motion_module_kwargs"]
                return int(kwargs["num_attention_heads"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    for name in ("configs/inference/default.yaml", "configs/unet/unet.yaml"):
        path = root.parent / name
        if path.is_file():
            match = _HEADS_PATTERN.search(path.read_text(errors="replace"))
            if match:
                return int(match.group(1))
    return HALLO_MOTION_HEADS


_NET = Path("hallo") / "net.pth"
_UNET_CONFIG = Path("stable-diffusion-v1-5") / "unet" / "config.json"
_VAE = Path("sd-vae-ft-mse")
_WAV2VEC = Path("wav2vec") / "wav2vec2-base-960h"


def find_hallo_root(path: str | os.PathLike[str]) -> Path | None:
    """The ``pretrained_models`` folder of a Hallo layout at or directly under ``path``, or None."""
    root = Path(path)
    for candidate in (root, root / "pretrained_models"):
        if (candidate / _NET).is_file():
            return candidate
    return None


@dataclass
class HalloNetworks:
    """Hallo's networks as emo modules, with what the load did.

    Attributes
    ----------
    reference_net
        :class:`~emo.models.ReferenceNet` with ``text_attention=True``.
    backbone
        :class:`~emo.models.Backbone` configured as Hallo's denoising UNet.
    face_locator
        :class:`~emo.models.face_locator.FaceLocator` (3 channels in, ``c0`` out).
    face_projection
        :class:`~emo.models.face_embedding_projection.FaceEmbeddingProjection`.
    audio_projection
        :class:`~emo.models.audio_projection.AudioProjection` (ReLU).
    report
        Per network, the :class:`~emo.modeling.LoadReport` (every key placed).
    root
        The ``pretrained_models`` folder.
    """

    reference_net: nn.Module
    backbone: nn.Module
    face_locator: nn.Module
    face_projection: nn.Module
    audio_projection: nn.Module
    report: dict[str, LoadReport]
    root: Path

    def modules(self) -> dict[str, nn.Module]:
        """The five networks by component name."""
        return {
            "reference_net": self.reference_net,
            "backbone": self.backbone,
            "face_locator": self.face_locator,
            "face_projection": self.face_projection,
            "audio_projection": self.audio_projection,
        }


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(
            f"Hallo folder: {what} {os.fspath(path)!r} is missing; Hallo's pretrained_models/ "
            "folder holds it (see docs/guide/hallo.md for the layout)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"Hallo folder: cannot read {what} {os.fspath(path)!r}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"Hallo folder: {what} {os.fspath(path)!r} is not a JSON object")
    return data


def _split(state: Mapping[str, torch.Tensor], file: Path) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in HALLO_PREFIXES}
    unknown = []
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        if prefix in parts and rest:
            parts[prefix][rest] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f"{os.fspath(file)!r}: {len(unknown)} keys belong to none of Hallo's networks "
            f"({', '.join(sorted(HALLO_PREFIXES))}): {', '.join(sorted(unknown)[:10])}"
        )
    empty = [prefix for prefix, part in parts.items() if not part]
    if empty:
        raise CheckpointError(
            f"{os.fspath(file)!r} holds no weights for {', '.join(empty)}; is it Hallo's net.pth?"
        )
    return parts


def _shape(part: Mapping[str, torch.Tensor], key: str, file: Path, prefix: str) -> tuple[int, ...]:
    if key not in part:
        raise CheckpointError(
            f"{os.fspath(file)!r}: missing key {prefix}.{key}, which Hallo's {prefix} always has"
        )
    return tuple(int(s) for s in part[key].shape)


def hallo_configs(
    unet_config: Mapping[str, Any],
    *,
    audio_dim: int | None = None,
    audio_feature_dim: int = 768,
    audio_layers: int = 12,
    audio_context_frames: int = 2,
    audio_tokens: int = 32,
    audio_hidden_dim: int = 512,
    face_embedding_dim: int = 512,
    face_tokens: int = 4,
    locator_in_channels: int = 3,
    locator_channels: tuple[int, ...] = (16, 32, 64, 128),
    motion_num_attention_heads: int = HALLO_MOTION_HEADS,
    motion_num_transformer_blocks: int = 1,
    motion_max_positions: int = 32,
    temporal_in_mid_block: bool = True,
) -> dict[str, dict[str, Any]]:
    """The emo configs of Hallo's five networks for a UNet config and Hallo's other sizes.

    The defaults are Hallo's (``scripts/inference.py``, ``configs/unet/unet.yaml``);
    :func:`hallo_network_configs` reads them from a checkpoint instead.

    Parameters
    ----------
    unet_config
        The diffusers ``unet/config.json`` Hallo builds both UNets from.
    audio_dim
        Width of the audio tokens (default: the UNet's ``cross_attention_dim``).
    audio_feature_dim, audio_layers
        Width and layer count of the audio encoder's features (wav2vec2-base: 768, 12).
    audio_context_frames
        ``m`` of the ``2m+1``-frame audio window (Hallo: 2).
    audio_tokens, audio_hidden_dim
        Audio tokens per frame (32) and the audio projection's hidden width (512).
    face_embedding_dim, face_tokens
        Face-embedding width (512) and face tokens (4).
    locator_in_channels, locator_channels
        The face locator's input channels (3) and stage widths.
    motion_num_attention_heads, motion_num_transformer_blocks, motion_max_positions
        The motion modules (AnimateDiff v2: 8 heads, 1 block, 32 positions).
    temporal_in_mid_block
        Whether the mid block has a motion module (AnimateDiff v2: yes).

    Returns
    -------
    dict
        Component name -> config kwargs.
    """
    from emo.loaders.diffusers_unet import unet_config_from_diffusers

    unet = unet_config_from_diffusers(unet_config)
    plain_blocks = [
        f"down_blocks.{i}"
        for i, kind in enumerate(unet["down_block_types"])
        if kind == "DownBlock2D"
    ] + [f"up_blocks.{i}" for i, kind in enumerate(unet["up_block_types"]) if kind == "UpBlock2D"]
    cross_dim = int(unet.get("cross_attention_dim", 768))
    backbone = {
        **unet,
        "text_attention": True,
        "audio_cross_attention_dim": cross_dim if audio_dim is None else audio_dim,
        "audio_attention_type": "masked",
        "use_motion_modules": True,
        "temporal_in_mid_block": temporal_in_mid_block,
        "motion_num_attention_heads": motion_num_attention_heads,
        "motion_num_transformer_blocks": motion_num_transformer_blocks,
        "motion_max_positions": motion_max_positions,
        "motion_norm_across_frames": False,
        "speed_embed_dim": None,
        "skip_motion_modules": plain_blocks,
        "face_features_at": "conv_in",
    }
    return {
        "reference_net": {**unet, "text_attention": True},
        "backbone": backbone,
        "face_locator": {
            "in_channels": locator_in_channels,
            "out_channels": int(unet["block_out_channels"][0]),
            "block_out_channels": tuple(locator_channels),
        },
        "face_projection": {
            "embedding_dim": face_embedding_dim,
            "num_tokens": face_tokens,
            "output_dim": cross_dim,
        },
        "audio_projection": {
            "feature_dim": audio_feature_dim,
            "num_layers": audio_layers,
            "context_frames": audio_context_frames,
            "num_tokens": audio_tokens,
            "hidden_dim": audio_hidden_dim,
            "output_dim": cross_dim if audio_dim is None else audio_dim,
            "activation": "relu",
        },
    }


def hallo_network_configs(
    unet_config: Mapping[str, Any],
    parts: Mapping[str, Mapping[str, torch.Tensor]],
    wav2vec_config: Mapping[str, Any],
    *,
    file: Path = _NET,
    motion_num_attention_heads: int = HALLO_MOTION_HEADS,
) -> dict[str, dict[str, Any]]:
    """The emo configs of Hallo's five networks, from the SD UNet config and the weights' shapes.

    Parameters
    ----------
    unet_config
        The diffusers ``unet/config.json`` Hallo builds both UNets from.
    parts
        ``net.pth`` split by prefix (keys without it).
    wav2vec_config
        The wav2vec2 ``config.json`` (its ``hidden_size`` and ``num_hidden_layers`` size
        the audio projection's input).
    file
        The ``net.pth`` path, for messages.
    motion_num_attention_heads
        Heads of the motion modules (not visible in the weights; see :func:`motion_heads`).

    Returns
    -------
    dict
        Component name -> config kwargs (see :func:`hallo_configs`).
    """
    den = parts["denoising_unet"]
    audio_key = next((k for k in den if ".audio_modules." in k and "attn2_0.to_k" in k), None)
    if audio_key is None:
        raise CheckpointError(
            f"{os.fspath(file)!r}: denoising_unet has no audio_modules; is it Hallo's net.pth?"
        )
    pe_key = next((k for k in den if k.endswith("pos_encoder.pe")), None)
    if pe_key is None:
        raise CheckpointError(f"{os.fspath(file)!r}: denoising_unet has no motion modules")
    loc = parts["face_locator"]
    conv_in = _shape(loc, "conv_in.weight", file, "face_locator")
    conv_out = _shape(loc, "conv_out.weight", file, "face_locator")
    strided = sorted(
        int(k.split(".")[1]) for k in loc if k.startswith("blocks.") and k.endswith(".weight")
    )
    widths = [conv_in[0]] + [int(loc[f"blocks.{j}.weight"].shape[0]) for j in strided if j % 2 == 1]
    channels0 = int(unet_config["block_out_channels"][0])
    if conv_out[0] != channels0:
        raise ConfigError(
            f"{os.fspath(file)!r}: face_locator gives {conv_out[0]} channels but the UNet's "
            f"conv_in gives {channels0}; the UNet config does not belong to this net.pth"
        )
    img = parts["imageproj"]
    proj = _shape(img, "proj.weight", file, "imageproj")
    token_dim = _shape(img, "norm.weight", file, "imageproj")[0]
    aud = parts["audioproj"]
    proj1 = _shape(aud, "proj1.weight", file, "audioproj")
    proj3 = _shape(aud, "proj3.weight", file, "audioproj")
    out_dim = _shape(aud, "norm.weight", file, "audioproj")[0]
    feature_dim = int(wav2vec_config["hidden_size"])
    layers = int(wav2vec_config["num_hidden_layers"])
    window, rest = divmod(proj1[1], feature_dim * layers)
    if rest or window % 2 == 0:
        raise ConfigError(
            f"{os.fspath(file)!r}: audioproj takes {proj1[1]} values per frame, not an odd "
            f"window of {layers} layers x {feature_dim} (the wav2vec2 config's sizes)"
        )
    configs = hallo_configs(
        unet_config,
        audio_dim=int(den[audio_key].shape[1]),
        audio_feature_dim=feature_dim,
        audio_layers=layers,
        audio_context_frames=window // 2,
        audio_tokens=proj3[0] // out_dim,
        audio_hidden_dim=proj1[0],
        face_embedding_dim=proj[1],
        face_tokens=proj[0] // token_dim,
        locator_in_channels=conv_in[1],
        locator_channels=tuple(widths),
        motion_num_attention_heads=motion_num_attention_heads,
        motion_num_transformer_blocks=1
        + max(
            int(k.split("transformer_blocks.")[1].split(".")[0])
            for k in den
            if ".motion_modules." in k and "transformer_blocks." in k
        ),
        motion_max_positions=int(den[pe_key].shape[1]),
        temporal_in_mid_block=any(k.startswith("mid_block.motion_modules.") for k in den),
    )
    if token_dim != configs["face_projection"]["output_dim"]:
        raise ConfigError(
            f"{os.fspath(file)!r}: imageproj makes {token_dim}-wide tokens but the UNets' "
            f"cross_attention_dim is {configs['face_projection']['output_dim']}"
        )
    configs["audio_projection"]["output_dim"] = out_dim
    return configs


def _place(
    module: nn.Module, state: Mapping[str, torch.Tensor], prefix: str, file: Path
) -> LoadReport:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} missing: {', '.join(f'{prefix}.{k}' for k in missing[:10])}"
            )
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected: "
                f"{', '.join(f'{prefix}.{k}' for k in unexpected[:10])}"
            )
        raise CheckpointError(
            f"{os.fspath(file)!r} does not fit Hallo's {prefix} as built from the folder's "
            f"configs ({'; '.join(parts)}); is the net.pth complete and from Hallo?"
        )
    mismatched = [
        f"{prefix}.{k}: file {tuple(v.shape)} vs network {tuple(own[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"{os.fspath(file)!r}: {len(mismatched)} tensors do not fit the network built from "
            f"the folder's configs: {'; '.join(mismatched[:10])}"
        )
    module.load_state_dict(dict(state), strict=True, assign=True)
    return LoadReport()


def hallo_network_classes() -> dict[str, type[nn.Module]]:
    """The emo class of each of Hallo's networks, by component name (configs: :func:`hallo_configs`)."""
    from emo.models.audio_projection import AudioProjection
    from emo.models.backbone import Backbone
    from emo.models.face_embedding_projection import FaceEmbeddingProjection
    from emo.models.face_locator import FaceLocator
    from emo.models.reference_net import ReferenceNet

    return {
        "reference_net": ReferenceNet,
        "backbone": Backbone,
        "face_locator": FaceLocator,
        "face_projection": FaceEmbeddingProjection,
        "audio_projection": AudioProjection,
    }


def load_hallo_networks(
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    motion_num_attention_heads: int | None = None,
) -> HalloNetworks:
    """Build Hallo's five networks from a ``pretrained_models`` folder.

    Parameters
    ----------
    path
        Hallo's ``pretrained_models/`` folder (or the folder holding it).
    dtype
        The networks' dtype (``net.pth`` stores float16; float32 by default).
    device
        Where the weights go.
    motion_num_attention_heads
        Heads of the motion modules; default: read by :func:`motion_heads` (8 in Hallo).

    Returns
    -------
    HalloNetworks

    Raises
    ------
    CheckpointError
        If a file is missing or unreadable, or ``net.pth`` has a key the networks have no
        place for, lacks one they need, or a tensor of another shape (the keys are named).
    """

    root = find_hallo_root(path)
    if root is None:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a Hallo pretrained_models folder: it has no "
            f"{_NET.as_posix()}; see docs/guide/hallo.md for the layout"
        )
    file = root / _NET
    unet_config = _read_json(root / _UNET_CONFIG, "the Stable Diffusion UNet config")
    wav2vec_config = _read_json(root / _WAV2VEC / "config.json", "the wav2vec2 config")
    state = load_state_dict_file(file)
    parts = _split(state, file)
    heads = motion_num_attention_heads or motion_heads(root)
    configs = hallo_network_configs(
        unet_config, parts, wav2vec_config, file=file, motion_num_attention_heads=heads
    )
    classes = hallo_network_classes()
    modules: dict[str, nn.Module] = {}
    report: dict[str, LoadReport] = {}
    for prefix, name in HALLO_PREFIXES.items():
        with torch.device("meta"):
            module = classes[name](**configs[name])
        tensors = {k: v.to(device=device, dtype=dtype) for k, v in parts[prefix].items()}
        report[name] = _place(module, tensors, prefix, file)
        module.requires_grad_(False)
        modules[name] = module.eval()
    return HalloNetworks(
        reference_net=modules["reference_net"],
        backbone=modules["backbone"],
        face_locator=modules["face_locator"],
        face_projection=modules["face_projection"],
        audio_projection=modules["audio_projection"],
        report=report,
        root=root,
    )


def hallo_audio_encoder(path: str | os.PathLike[str]) -> Any:
    """The wav2vec2 encoder of a Hallo folder, in Hallo's mode; ``None`` when the folder has none.

    Parameters
    ----------
    path
        Hallo's ``pretrained_models`` folder.
    """
    folder = Path(path) / _WAV2VEC
    if not (folder / "config.json").is_file():
        return None
    from emo.audio.wav2vec2 import Wav2Vec2Encoder

    layers = int(_read_json(folder / "config.json", "the wav2vec2 config")["num_hidden_layers"])
    # Hallo keeps the outputs of the transformer layers 1..L, not the embedding output.
    return Wav2Vec2Encoder(
        os.fspath(folder),
        layers=tuple(range(1, layers + 1)),
        mode="hallo",
        chunk_seconds=HALLO_AUDIO_BLOCK_SECONDS,
        context_seconds=HALLO_AUDIO_CONTEXT_SECONDS,
    )


#: The Hallo encoder's transformer blocks: 60 s kept + 10 s of context on each side, so a
#: track of up to a minute is encoded whole (Hallo's way) and a longer one in bounded memory.
#: On 120 s of speech with a random wav2vec2-base (attention spread over everything: the
#: worst case) the blocks differ from the whole-track features by 0.008 standard deviations
#: on average and 0.26 at most; with 20 s + 2 s blocks by 0.019 and 2.4
#: (``benchmarks/hallo_audio_blocks.py``).
HALLO_AUDIO_BLOCK_SECONDS = 60.0
HALLO_AUDIO_CONTEXT_SECONDS = 10.0
