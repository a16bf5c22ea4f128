"""Backbone: the Stable Diffusion 1.x UNet inflated to video, with EMO's new branches.

``(b, c, f, h, w)`` noisy latents in, ``(b, c_out, f, h, w)`` out. All spatial
layers run on the ``(b f)`` frames; the new branches are

- *reference attention*: every ``attn1`` attends over ``[own tokens ; reference
  tokens]`` of the same layer (from :class:`~emo.models.ReferenceNet`; no new
  parameters);
- *audio attention*: ``audio_norm`` + ``audio_attn`` in every spatial transformer
  block, right after the reference attention, from each frame's tokens to that
  frame's audio tokens;
- no text cross-attention: the SD ``attn2`` is not built (EMO has no prompt), and
  loading SD weights reports its tensors as skipped;
- *temporal modules* ``{down_blocks.i|up_blocks.i}.motion_modules.j`` after every
  layer and ``mid_block.motion_modules.0`` (AnimateDiff placement and names),
  given the motion frames' features of the same layer and the speed embedding;
- *speed layers*: ``speed_encoder`` maps the head-rotation speed of every frame to
  bucket codes, concatenates the codes of the frames ``t-m .. t+m`` and embeds them
  with an MLP; a cross-attention in every temporal module reads the embeddings.

Every new branch's output projection starts at zero, so a fresh Backbone with
the weights of a 2D UNet equals that UNet frame by frame.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.modeling import LoadReport
from emo.models._checks import check_input_tensor
from emo.models.attention import BasicTransformerBlock, KeyValues
from emo.models.blocks import BlockContext
from emo.models.conditions import BackboneConditions, ReferenceKeyValues
from emo.models.masked_audio import AudioMasks
from emo.models.reference_net import MotionFeatures, ReferenceFeatures, UNetSource
from emo.models.sd15 import SD15_UNET_CONFIG
from emo.models.unet_2d import TimestepLike, UNetBase, document_unet_config

__all__ = ["Backbone"]


@document_unet_config
class Backbone(UNetBase):
    """The EMO denoising network: a video UNet with reference, audio, temporal and speed branches.

    The first parameters are those of :class:`~emo.models.UNet2D` (same meaning);
    the rest configure the new branches.

    Parameters
    ----------
    {unet_config_parameters}
    audio_cross_attention_dim
        Width ``d_audio`` of the audio tokens; ``None`` builds no audio attention.
    use_motion_modules
        Build the temporal modules.
    temporal_in_mid_block
        Also put one temporal module in the mid block (AnimateDiff v2).
    motion_num_attention_heads
        Heads of the temporal attentions.
    motion_num_transformer_blocks
        Transformer blocks per temporal module.
    motion_norm_num_groups
        Groups of the temporal GroupNorm (default: ``norm_num_groups``).
    motion_max_positions
        Longest sequence (motion frames + frames) the temporal positions cover.
    motion_norm_across_frames
        See :class:`~emo.models.temporal.TemporalModule`.
    speed_embed_dim
        Width of the speed embedding; ``None`` builds no speed encoder.
    speed_context_frames
        Half-width ``m`` of the window of frames ``t-m .. t+m`` whose speed codes
        describe frame ``t`` (the paper's speed window).
    speed_encoder_kwargs
        Further keyword arguments of :class:`~emo.models.speed.SpeedEncoder`
        (bucket centres and radii, ``reference_fps``).
    text_attention
        Build the cross-attentions ``norm2``/``attn2`` over context tokens
        (``encoder_hidden_states``; Hallo's four face-embedding tokens).
    audio_attention_type
        ``"attention"``: EMO's audio attention inside every spatial transformer block
        (``audio_norm``/``audio_attn``). ``"masked"``: Hallo's layout, a
        :class:`~emo.models.masked_audio.MaskedAudioModule` after each spatial
        transformer (``audio_modules.{j}``) with three region-masked cross-attentions.
    skip_motion_modules
        Paths of blocks (``"down_blocks.3"``) whose temporal modules are built (their
        weights load) but do not run. Hallo's inference path runs none in the blocks
        without spatial attention (see ``docs/guide/hallo.md``).
    face_features_at
        Where the face-locator features enter: ``"input"`` (added to the noisy latents,
        ``in_channels`` wide; EMO) or ``"conv_in"`` (added to the output of ``conv_in``,
        ``block_out_channels[0]`` wide; Hallo).
    """

    builds_text_attention: ClassVar[bool] = False

    def __init__(
        self,
        sample_size: int = SD15_UNET_CONFIG["sample_size"],
        in_channels: int = SD15_UNET_CONFIG["in_channels"],
        out_channels: int = SD15_UNET_CONFIG["out_channels"],
        down_block_types: Sequence[str] = SD15_UNET_CONFIG["down_block_types"],
        up_block_types: Sequence[str] = SD15_UNET_CONFIG["up_block_types"],
        block_out_channels: Sequence[int] = SD15_UNET_CONFIG["block_out_channels"],
        layers_per_block: int | Sequence[int] = SD15_UNET_CONFIG["layers_per_block"],
        attention_head_dim: int | Sequence[int] = SD15_UNET_CONFIG["attention_head_dim"],
        cross_attention_dim: int = SD15_UNET_CONFIG["cross_attention_dim"],
        use_linear_projection: bool = SD15_UNET_CONFIG["use_linear_projection"],
        norm_num_groups: int = SD15_UNET_CONFIG["norm_num_groups"],
        norm_eps: float = SD15_UNET_CONFIG["norm_eps"],
        flip_sin_to_cos: bool = True,
        freq_shift: float = 0,
        dropout: float = 0.0,
        mid_block_type: str | None = "UNetMidBlock2DCrossAttn",
        num_attention_heads: int | Sequence[int] | None = None,
        transformer_layers_per_block: int | Sequence[int] = 1,
        audio_cross_attention_dim: int | None = 768,
        use_motion_modules: bool = True,
        temporal_in_mid_block: bool = True,
        motion_num_attention_heads: int = 8,
        motion_num_transformer_blocks: int = 1,
        motion_norm_num_groups: int | None = None,
        motion_max_positions: int = 32,
        motion_norm_across_frames: bool = False,
        speed_embed_dim: int | None = 320,
        speed_context_frames: int = 2,
        speed_encoder_kwargs: Mapping[str, Any] | None = None,
        text_attention: bool = False,
        audio_attention_type: str = "attention",
        skip_motion_modules: Sequence[str] = (),
        face_features_at: str = "input",
    ) -> None:
        super().__init__()
        if audio_attention_type not in ("attention", "masked"):
            raise ConfigError(
                f"Backbone: audio_attention_type must be 'attention' or 'masked', got "
                f"{audio_attention_type!r}"
            )
        if face_features_at not in ("input", "conv_in"):
            raise ConfigError(
                f"Backbone: face_features_at must be 'input' or 'conv_in', got {face_features_at!r}"
            )
        temporal_kwargs: dict[str, Any] | None = None
        if use_motion_modules:
            temporal_kwargs = {
                "num_attention_heads": motion_num_attention_heads,
                "num_transformer_blocks": motion_num_transformer_blocks,
                "norm_num_groups": motion_norm_num_groups or norm_num_groups,
                "max_positions": motion_max_positions,
                "speed_embed_dim": speed_embed_dim,
                "norm_across_frames": motion_norm_across_frames,
            }
        self._build(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            mid_block_type=mid_block_type,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            transformer_layers_per_block=transformer_layers_per_block,
            cross_attention_dim=cross_attention_dim,
            use_linear_projection=use_linear_projection,
            norm_num_groups=norm_num_groups,
            norm_eps=norm_eps,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            dropout=dropout,
            with_head=True,
            temporal_kwargs=temporal_kwargs,
            temporal_in_mid_block=temporal_in_mid_block,
            audio_cross_attention_dim=audio_cross_attention_dim,
            text_attention=text_attention,
            masked_audio=audio_attention_type == "masked",
            skip_motion_modules=tuple(skip_motion_modules),
        )
        self.speed_encoder: nn.Module | None = None
        self._make_speed_encoder()
        self._attention_keys = self.attention_keys
        self._attention_widths = {
            name: int(module.norm1.normalized_shape[0])
            for name, module in self.named_modules()
            if name in set(self._attention_keys) and isinstance(module.norm1, nn.LayerNorm)
        }
        skipped = tuple(f"{prefix}." for prefix in skip_motion_modules)
        self._motion_keys = [
            name
            for name, _ in self.named_modules()
            if name.rsplit(".", 2)[-2:-1] == ["motion_modules"] and not name.startswith(skipped)
        ]

    def _make_speed_encoder(self) -> None:
        dim = self.config["speed_embed_dim"]
        if dim is None or not self.config["use_motion_modules"]:
            return
        from emo.models.speed import SpeedEncoder

        extra = self.config["speed_encoder_kwargs"]
        self.speed_encoder = SpeedEncoder(
            dim,
            context_frames=int(self.config["speed_context_frames"]),
            **(extra.to_dict() if extra is not None else {}),
        )

    def reset_new_branches(self) -> None:
        """Re-create temporal modules, audio attentions and the speed encoder, freshly initialised.

        See :meth:`emo.models.unet_2d.UNetBase.reset_new_branches`.
        """
        super().reset_new_branches()
        self._make_speed_encoder()

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_unet2d(
        cls, source: UNetSource, *, strict: bool = True, **backbone_kwargs: Any
    ) -> Backbone:
        """Build a Backbone holding the weights of a 2D UNet; new branches stay fresh.

        Parameters
        ----------
        source
            A :class:`~emo.models.UNet2D`, a ``(config, state_dict)`` pair, a bare
            state dict (config from ``backbone_kwargs`` and the defaults), or the
            path of a diffusers-format SD folder / ``unet`` folder.
        strict
            Raise :class:`~emo.errors.CheckpointError` when a spatial weight is
            missing or a tensor has no place.
        **backbone_kwargs
            Backbone config values (new-branch settings, or replacements).
        """
        from emo.loaders.diffusers_unet import build_from_unet_source

        model, _ = build_from_unet_source(cls, source, strict=strict, **backbone_kwargs)
        return model

    def load_motion_modules(
        self, source: str | os.PathLike[str] | Mapping[str, torch.Tensor], *, strict: bool = False
    ) -> LoadReport:
        """Load AnimateDiff motion-module weights into the temporal modules.

        Delegates to :func:`emo.loaders.animatediff.load_motion_module_weights`
        (original or diffusers layout, file or state dict).
        """
        from emo.loaders.animatediff import load_motion_module_weights

        return load_motion_module_weights(self, source, strict=strict)

    @property
    def motion_module_keys(self) -> list[str]:
        """Paths of the temporal modules that run (the keys of motion features it reads)."""
        return list(self._motion_keys)

    # ----------------------------------------------------------------------------------------
    def project_reference(
        self, reference_features: ReferenceFeatures, *, dtype: torch.dtype | None = None
    ) -> ReferenceKeyValues:
        """Project the reference tokens of every reference-attention layer to keys and values.

        The reference image does not change during a generation: project it once and
        pass the result (to :meth:`prepare_conditions` or as ``reference_features``) to
        every step. Projecting only the distinct rows and then
        :meth:`~emo.models.conditions.ReferenceKeyValues.select`-ing the rows of the
        guidance branches projects each distinct reference once.

        Parameters
        ----------
        reference_features
            :class:`~emo.models.ReferenceFeatures` of ``b_r`` reference images.
        dtype
            Cast the tokens to this dtype first (default: the weights' dtype).

        Returns
        -------
        ReferenceKeyValues
            Per layer, keys and values ``(b_r, m, inner)``.
        """
        if not isinstance(reference_features, ReferenceFeatures):
            raise InputError(
                "Backbone: reference_features must be the ReferenceFeatures a ReferenceNet "
                f"returns, got {type(reference_features).__name__}"
            )
        dtype = self.conv_in.weight.dtype if dtype is None else dtype
        missing = [k for k in self._attention_keys if k not in reference_features.attention]
        if missing:
            raise InputError(
                f"Backbone: reference_features lack {len(missing)} layers (e.g. {missing[0]!r}); "
                "compute them with a ReferenceNet of the same config"
            )
        batch = reference_features.attention[self._attention_keys[0]].shape[0]
        layers: dict[str, KeyValues] = {}
        for key in self._attention_keys:
            ref = reference_features.attention[key]
            width = self._attention_widths[key]
            if ref.ndim != 3 or ref.shape[0] != batch or ref.shape[2] != width:
                raise InputError(
                    f"Backbone: reference features {key!r} must be (b={batch}, m, c={width}), "
                    f"got {tuple(ref.shape)}; compute them with a ReferenceNet of the same config"
                )
            block = self.get_submodule(key)
            assert isinstance(block, BasicTransformerBlock)
            layers[key] = block.attn1.project_reference(ref.to(dtype))
        return ReferenceKeyValues(layers)

    def _check_reference(
        self, features: ReferenceFeatures, batch: int, dtype: torch.dtype, frames: int = 1
    ) -> dict[str, torch.Tensor]:
        if not isinstance(features, ReferenceFeatures):
            raise InputError(
                "Backbone: reference_features must be the ReferenceFeatures a ReferenceNet "
                f"returns (or their project_reference), got {type(features).__name__}"
            )
        missing = [k for k in self._attention_keys if k not in features.attention]
        if missing:
            raise InputError(
                f"Backbone: reference_features lack {len(missing)} layers (e.g. {missing[0]!r}); "
                "compute them with a ReferenceNet of the same config"
            )
        out: dict[str, torch.Tensor] = {}
        for key in self._attention_keys:
            ref = features.attention[key]
            width = self._attention_widths[key]
            if (
                ref.ndim != 3
                or ref.shape[0] not in (1, batch, batch * frames)
                or ref.shape[2] != width
            ):
                raise InputError(
                    f"Backbone: reference features {key!r} must be (b={batch} or 1 or "
                    f"b*f={batch * frames}, m, c={width}), got {tuple(ref.shape)}; compute them "
                    "with a ReferenceNet of the same config"
                )
            out[key] = ref.to(dtype)  # projected once per video (see Attention.forward)
        return out

    def _check_motion(self, features: MotionFeatures, batch: int) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for key in self._motion_keys:
            if key not in features.layers:
                raise InputError(
                    f"Backbone: motion_features lack layer {key!r}; compute them with "
                    "ReferenceNet.motion_features on a ReferenceNet of the same config"
                )
            layer = features.layers[key]
            if layer.ndim != 5 or layer.shape[0] not in (1, batch):
                raise InputError(
                    f"Backbone: motion features {key!r} must be (b={batch} or 1, c, n, h, w), "
                    f"got {tuple(layer.shape)}; compute them with ReferenceNet.motion_features"
                )
            out[key] = layer  # batch 1 is broadcast by the temporal modules, not copied
        return out

    def prepare_conditions(
        self,
        batch: int,
        frames: int,
        *,
        reference_features: ReferenceFeatures | ReferenceKeyValues | None = None,
        audio_tokens: torch.Tensor | None = None,
        audio_rows: Sequence[int] | None = None,
        motion_features: MotionFeatures | None = None,
        speed: torch.Tensor | None = None,
        speed_fps: float | None = None,
        dtype: torch.dtype | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        reference_rows: Sequence[int] | None = None,
        audio_masks: AudioMasks | None = None,
    ) -> BackboneConditions:
        """Check and lay out a clip's conditions once, for every denoising step of the clip.

        The arguments mean what they mean in :meth:`forward`; passing the result as
        ``conditions=`` to every step is equal to passing them each time, without
        re-checking, re-embedding the speed or re-projecting the reference (give
        :class:`~emo.models.conditions.ReferenceKeyValues` from
        :meth:`project_reference` to project it once per generation).

        Parameters
        ----------
        batch
            Samples ``b`` of the steps (e.g. the guidance branches).
        frames
            Frames ``f`` per sample.
        reference_features
            ReferenceFeatures or their keys and values, batch ``b`` or 1, or ``b f`` (one
            reference per frame, video-major).
        audio_tokens
            ``(b or 1, f, k, d_audio)``.
        audio_rows
            The samples whose audio tokens are not all zero, when the caller knows that
            the others are (a dropped audio condition): those skip the audio attention,
            whose output is then exactly its output bias. ``None``: compute every row.
        motion_features
            MotionFeatures, ``(b or 1, c, n, h, w)`` per layer.
        speed
            ``(b or 1, f)`` or ``(b or 1, f + 2m)``.
        speed_fps
            Frame rate of ``speed``.
        dtype
            The dtype of the steps' latents (default: the weights' dtype).
        encoder_hidden_states
            Context tokens ``(b or 1, t, d)`` of the cross-attentions ``attn2`` (built
            with ``text_attention=True``; Hallo's face tokens).
        reference_rows
            The samples whose self-attention reads the reference tokens; the others run
            plain self-attention (Hallo's unconditional row). ``None``: all.
        audio_masks
            Region masks of the masked audio modules (``audio_attention_type="masked"``),
            rows ``(b f)`` or 1 per level.

        Returns
        -------
        BackboneConditions
        """
        weight = self.conv_in.weight
        dtype = weight.dtype if dtype is None else dtype
        if batch <= 0 or frames <= 0:
            raise InputError(
                f"Backbone: conditions for batch={batch}, frames={frames}; both must be >= 1"
            )
        if motion_features is not None and not isinstance(motion_features, MotionFeatures):
            raise InputError(
                "Backbone: motion_features must be MotionFeatures with a frame axis, got "
                f"{type(motion_features).__name__}; use ReferenceNet.motion_features(latents "
                "(b, c, n, h, w)) or MotionFeatures.from_reference_features(features, "
                "num_frames=n)"
            )
        if audio_tokens is not None:
            check_input_tensor(
                "Backbone", "audio_tokens", audio_tokens, like=weight, layout="(b, f, k, d)"
            )
        if speed is not None:
            check_input_tensor("Backbone", "speed", speed, like=weight, layout="(b, f)")
        reference: dict[str, torch.Tensor | KeyValues] | None = None
        if isinstance(reference_features, ReferenceKeyValues):
            missing = [k for k in self._attention_keys if k not in reference_features.layers]
            if missing or reference_features.batch_size not in (1, batch, batch * frames):
                raise InputError(
                    f"Backbone: the reference keys/values have batch "
                    f"{reference_features.batch_size} and lack {len(missing)} layers; project "
                    f"ReferenceFeatures of batch {batch} or 1 with this Backbone's "
                    "project_reference"
                )
            reference = dict(reference_features.layers)
        elif reference_features is not None:
            # Tokens: each layer projects them when it runs (inside its own forward, as
            # gradient checkpointing and sharded training need).
            reference = dict(self._check_reference(reference_features, batch, dtype, frames))
        audio = None
        rows = None
        if audio_tokens is not None:
            dim = self.config["audio_cross_attention_dim"]
            if dim is None:
                raise InputError(
                    "Backbone: audio_tokens were given but this Backbone has no audio attention; "
                    "build it with audio_cross_attention_dim=d"
                )
            if (
                audio_tokens.ndim != 4
                or audio_tokens.shape[0] not in (1, batch)
                or audio_tokens.shape[1] != frames
                or audio_tokens.shape[3] != dim
            ):
                raise InputError(
                    f"Backbone: audio_tokens must be (b={batch}, f={frames}, k, d={dim}), got "
                    f"{tuple(audio_tokens.shape)}"
                )
            audio = rearrange(
                audio_tokens.to(dtype).expand(batch, -1, -1, -1), "b f k d -> (b f) k d"
            )
            if audio_rows is not None:
                rows = tuple(sorted({int(r) for r in audio_rows}))
                if any(not 0 <= r < batch for r in rows):
                    raise InputError(
                        f"Backbone: audio_rows {list(audio_rows)} must index the batch of {batch}"
                    )
        motion = None
        if motion_features is not None and self._motion_keys:
            motion = self._check_motion(motion_features.to(dtype=dtype), batch)
        speed_embedding = None
        if speed is not None:
            if self.speed_encoder is None:
                raise InputError(
                    "Backbone: speed was given but this Backbone has no speed encoder; build it "
                    "with speed_embed_dim=d and use_motion_modules=True"
                )
            m = int(self.config["speed_context_frames"])
            if (
                speed.ndim != 2
                or speed.shape[0] not in (1, batch)
                or speed.shape[1] not in (frames, frames + 2 * m)
            ):
                raise InputError(
                    f"Backbone: speed must be (b={batch}, f={frames}) or, with {m} context "
                    f"frames on each side, (b={batch}, f + 2m={frames + 2 * m}); got "
                    f"{tuple(speed.shape)}"
                )
            padded = bool(m) and speed.shape[1] == frames + 2 * m
            speed_embedding = self.speed_encoder(speed.to(dtype), fps=speed_fps, padded=padded)
        context = None
        if encoder_hidden_states is not None:
            context = self._prepare_context(encoder_hidden_states, batch, frames, dtype)
        ref_rows = None
        if reference_rows is not None:
            ref_rows = tuple(sorted({int(r) for r in reference_rows}))
            if any(not 0 <= r < batch for r in ref_rows):
                raise InputError(
                    f"Backbone: reference_rows {list(reference_rows)} must index the batch of "
                    f"{batch}"
                )
        masks = None
        if audio_masks is not None:
            if not isinstance(audio_masks, AudioMasks):
                raise InputError(
                    f"Backbone: audio_masks must be AudioMasks, got {type(audio_masks).__name__}"
                )
            masks = audio_masks.to(weight.device, dtype)
        return BackboneConditions(
            batch=batch,
            frames=frames,
            dtype=dtype,
            reference=reference,
            audio_tokens=audio,
            audio_rows=rows,
            motion=motion,
            speed_embedding=speed_embedding,
            context=context,
            reference_rows=ref_rows,
            audio_masks=masks,
        )

    def _prepare_context(
        self, tokens: torch.Tensor, batch: int, frames: int, dtype: torch.dtype
    ) -> torch.Tensor:
        if not self.config["text_attention"]:
            raise InputError(
                "Backbone: encoder_hidden_states were given but this Backbone has no "
                "cross-attention attn2; build it with text_attention=True"
            )
        dim = int(self.config["cross_attention_dim"])
        check_input_tensor(
            "Backbone",
            "encoder_hidden_states",
            tokens,
            like=self.conv_in.weight,
            layout="(b, t, d)",
        )
        if tokens.ndim != 3 or tokens.shape[0] not in (1, batch) or tokens.shape[2] != dim:
            raise InputError(
                f"Backbone: encoder_hidden_states must be (b={batch}, t, d={dim}), got "
                f"{tuple(tokens.shape)}"
            )
        expanded = tokens.to(dtype).expand(batch, -1, -1)
        return expanded.repeat_interleave(frames, dim=0)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: TimestepLike,
        *,
        reference_features: ReferenceFeatures | ReferenceKeyValues | None = None,
        audio_tokens: torch.Tensor | None = None,
        motion_features: MotionFeatures | None = None,
        speed: torch.Tensor | None = None,
        speed_fps: float | None = None,
        conditions: BackboneConditions | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        reference_rows: Sequence[int] | None = None,
        audio_masks: AudioMasks | None = None,
        face_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoise a clip.

        Parameters
        ----------
        sample
            Noisy latents ``(b, c, f, h, w)`` (face-locator features already added).
        timestep
            A number or a ``(b,)`` tensor.
        reference_features
            :class:`~emo.models.ReferenceFeatures` of the reference image, batch
            ``b`` or 1 (broadcast), or their keys and values from
            :meth:`project_reference`; ``None`` disables reference attention.
        audio_tokens
            Per-frame audio tokens ``(b, f, k, d_audio)`` (batch 1 broadcasts);
            ``None`` disables audio attention.
        motion_features
            :class:`~emo.models.MotionFeatures` of the ``n`` motion frames,
            ``(b, c, n, h, w)`` per layer (from :meth:`ReferenceNet.motion_features
            <emo.models.ReferenceNet.motion_features>`); batch 1 is shared by every
            sample without a copy. Ignored without temporal modules.
        speed
            Head-rotation speed per frame ``(b, f)`` in degrees per frame (batch 1
            broadcasts), or ``(b, f + 2m)`` with the ``m = speed_context_frames`` real
            neighbouring frames on each side (otherwise the window repeats the edge
            frames).
        speed_fps
            Frame rate ``speed`` is measured at; it is rescaled to the speed encoder's
            ``reference_fps`` (``speed * speed_fps / reference_fps``). ``None``: already
            at the reference rate.
        conditions
            All of the above prepared once by :meth:`prepare_conditions` (then leave
            them out): what a denoising loop passes at every step.
        encoder_hidden_states, reference_rows, audio_masks
            See :meth:`prepare_conditions` (Hallo's face tokens, unconditional row and
            region masks).
        face_features
            Face-locator features ``(b or 1, c, f or 1, h, w)``, added where the config's
            ``face_features_at`` says (``"input"``: to ``sample``; ``"conv_in"``: to the
            output of ``conv_in``); ``None``: none.

        Returns
        -------
        torch.Tensor
            ``(b, out_channels, f, h, w)``.
        """
        self._check_sample(sample, 5, "(b, c, f, h, w)")
        batch, _, frames = sample.shape[:3]
        if frames == 0 or batch == 0:
            raise InputError(
                f"Backbone: sample {tuple(sample.shape)} holds no frames; pass (b, c, f, h, w) "
                "with b, f >= 1"
            )
        dtype = sample.dtype
        if conditions is None:
            conditions = self.prepare_conditions(
                batch,
                frames,
                reference_features=reference_features,
                audio_tokens=audio_tokens,
                motion_features=motion_features,
                speed=speed,
                speed_fps=speed_fps,
                dtype=dtype,
                encoder_hidden_states=encoder_hidden_states,
                reference_rows=reference_rows,
                audio_masks=audio_masks,
            )
        elif any(
            c is not None
            for c in (
                reference_features,
                audio_tokens,
                motion_features,
                speed,
                encoder_hidden_states,
                reference_rows,
                audio_masks,
            )
        ):
            raise InputError(
                "Backbone: pass either conditions= (prepared once) or the separate "
                "conditions, not both"
            )
        elif (conditions.batch, conditions.frames, conditions.dtype) != (batch, frames, dtype):
            raise InputError(
                f"Backbone: the conditions were prepared for batch={conditions.batch}, "
                f"frames={conditions.frames}, {conditions.dtype} but the sample is batch={batch}, "
                f"frames={frames}, {dtype}; prepare them with those values"
            )
        residual = None
        if face_features is not None:
            at_conv_in = self.config["face_features_at"] == "conv_in"
            width = self.conv_in.out_channels if at_conv_in else sample.shape[1]
            if (
                face_features.ndim != 5
                or face_features.shape[0] not in (1, batch)
                or face_features.shape[1] != width
                or face_features.shape[2] not in (1, frames)
                or face_features.shape[3:] != sample.shape[3:]
            ):
                raise InputError(
                    f"Backbone: face_features must be (b={batch} or 1, c={width}, f={frames} or "
                    f"1, h, w={tuple(sample.shape[3:])}), got {tuple(face_features.shape)}"
                )
            face = face_features.to(dtype).expand(batch, -1, frames, -1, -1)
            if at_conv_in:
                residual = rearrange(face, "b c f h w -> (b f) c h w")
            else:
                sample = sample + face
        x = rearrange(sample, "b c f h w -> (b f) c h w")
        temb = self._time_embedding(timestep, batch, dtype, sample.device)
        temb = temb.repeat_interleave(frames, dim=0)
        ctx = BlockContext(
            num_frames=frames,
            reference=conditions.reference,
            audio_tokens=conditions.audio_tokens,
            audio_rows=conditions.audio_rows,
            motion=conditions.motion,
            speed_embedding=conditions.speed_embedding,
            checkpointing=self.gradient_checkpointing,
            encoder_hidden_states=conditions.context,
            reference_rows=conditions.reference_rows,
            audio_masks=conditions.audio_masks,
        )
        out = self._unet(x, temb, ctx, head=True, conv_in_residual=residual)
        result: torch.Tensor = rearrange(out, "(b f) c h w -> b c f h w", b=batch)
        return result
