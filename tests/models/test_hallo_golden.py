"""Hallo's released checkpoint layout runs through emo's networks exactly (the public golden set).

``tests/fixtures/hallo_golden`` was produced by Hallo's own inference code on a tiny random
configuration (its README says how). Tolerances: float32 on the CPU with one thread; the
golden README measures 1.5e-5 (clip 0's first prediction) to 2.4e-4 (clip 1's final latents)
between 1 and 2 threads of the *same* code. Each clip is compared to 1e-4 when it starts
from the golden frames of the clip before; the chained run (clip 1 from emo's own clip 0)
carries clip 0's float noise through a decode and an encode, and is held to 5e-4.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

from emo.errors import CheckpointError
from emo.loaders.hallo import HALLO_PREFIXES, load_hallo_networks
from emo.models.masked_audio import AudioMasks
from emo.models.vae import AutoencoderKL
from emo.pipelines.hallo_sampler import HalloConditions, HalloSampler, hallo_audio_windows
from emo.schedulers.ddim import DDIMScheduler

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "hallo_golden"
MODELS = GOLDEN / "pretrained_models"
TOLERANCE = 1e-4
CHAINED_TOLERANCE = 5e-4
#: The settings Hallo ran with (frames, steps, guidance, scheduler, region weights): read,
#: never assumed, so another golden set of another configuration runs the same tests.
CONFIG = json.loads((GOLDEN / "hallo_config.json").read_text())
FRAMES = int(CONFIG["data"]["n_sample_frames"])
MOTION_FRAMES = int(CONFIG["data"]["n_motion_frames"])


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hallo_scheduler(**changes: Any) -> DDIMScheduler:
    # Hallo passes these to diffusers' DDIMScheduler, whose set_alpha_to_one defaults to True.
    settings: dict[str, Any] = {"set_alpha_to_one": True, **CONFIG["noise_scheduler_kwargs"]}
    settings.update(changes)
    return DDIMScheduler(**settings)


def golden(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / name))


def golden_conditions() -> HalloConditions:
    inputs = golden("inputs/inputs.safetensors")
    audio = golden("inputs/audio.safetensors")
    levels = range(sum(key.startswith("full_mask.") for key in inputs))
    masks = AudioMasks(
        [inputs[f"full_mask.{level}"][:1] for level in levels],
        [inputs[f"face_mask.{level}"][:1] for level in levels],
        [inputs[f"lip_mask.{level}"][:1] for level in levels],
        weights=tuple(float(w) for w in CONFIG["motion_scale"]),  # type: ignore[arg-type]
    )
    return HalloConditions(
        reference_image=inputs["ref_image"],
        face_embedding=inputs["face_emb"][0],
        face_region=inputs["face_region"],
        masks=masks,
        audio_windows=hallo_audio_windows(
            audio["features"], context_frames=int(CONFIG["audioproj"]["seq_len"]) // 2
        ),
    )


def make_sampler(**scheduler_changes: Any) -> HalloSampler:
    nets = load_hallo_networks(MODELS)
    vae = AutoencoderKL.from_diffusers(MODELS / "sd-vae-ft-mse").eval()
    return HalloSampler(
        vae,
        nets.reference_net,
        nets.backbone,
        nets.face_locator,
        nets.face_projection,
        nets.audio_projection,
        hallo_scheduler(**scheduler_changes),
    )


def run(
    sampler: HalloSampler, conditions: HalloConditions | None = None, **kwargs: Any
) -> dict[int, dict[str, torch.Tensor]]:
    """Generate with the golden noise; per clip the first prediction, final latents, video."""
    out: dict[int, dict[str, torch.Tensor]] = {}

    def on_step(clip: int, step: int, t: int, prediction: torch.Tensor, _: torch.Tensor) -> None:
        if step == 0:
            out.setdefault(clip, {})["step0.model_pred"] = prediction

    count = len(list((GOLDEN / "outputs").glob("clip[0-9].safetensors")))
    clips = [golden(f"outputs/clip{k}.safetensors") for k in range(count)]
    with torch.no_grad():
        for clip in sampler.generate(
            conditions or golden_conditions(),
            num_frames=FRAMES,
            num_motion_frames=MOTION_FRAMES,
            num_inference_steps=int(CONFIG["inference_steps"]),
            guidance_scale=float(CONFIG["cfg_scale"]),
            initial_latents=[c["initial_latents"] for c in clips],
            on_step=on_step,
            **kwargs,
        ):
            out[clip.index]["final_latents"] = clip.latents
            out[clip.index]["video"] = clip.video
    return out


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.float() - b.float()).abs().max())


@pytest.fixture(scope="module")
def chained() -> dict[int, dict[str, torch.Tensor]]:
    torch.set_num_threads(1)
    return run(make_sampler())


@pytest.fixture(scope="module")
def clip1_from_golden_clip0() -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    video = golden("outputs/clip0.safetensors")["video"]
    frames = rearrange(video[0, :, -MOTION_FRAMES:], "c n h w -> n c h w")
    return run(make_sampler(), start_clip=1, motion_frames=frames)[1]


# -- loading -------------------------------------------------------------------------------
def test_every_net_pth_key_is_placed() -> None:
    state = torch.load(MODELS / "hallo" / "net.pth", weights_only=True)
    nets = load_hallo_networks(MODELS)
    assert all(report.ok for report in nets.report.values())
    placed = {
        f"{prefix}.{key}"
        for prefix, name in HALLO_PREFIXES.items()
        for key in getattr(nets, name).state_dict()
    }
    assert placed == set(state)
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        own = getattr(nets, HALLO_PREFIXES[prefix]).state_dict()[rest]
        assert torch.equal(own, value.float()), key


def test_configuration_comes_from_the_files_not_from_sizes() -> None:
    nets = load_hallo_networks(MODELS)
    unet = json.loads((MODELS / "stable-diffusion-v1-5" / "unet" / "config.json").read_text())
    backbone = nets.backbone.config
    extra = CONFIG["unet_additional_kwargs"]
    assert backbone["audio_cross_attention_dim"] == extra["audio_attention_dim"]
    assert (
        backbone["motion_num_attention_heads"]
        == extra["motion_module_kwargs"]["num_attention_heads"]
    )
    plain = [f"down_blocks.{i}" for i, t in enumerate(unet["down_block_types"]) if "Cross" not in t]
    plain += [f"up_blocks.{i}" for i, t in enumerate(unet["up_block_types"]) if "Cross" not in t]
    assert list(backbone["skip_motion_modules"]) == plain
    assert backbone["face_features_at"] == "conv_in"
    audio = nets.audio_projection.config
    assert 2 * audio["context_frames"] + 1 == CONFIG["audioproj"]["seq_len"]
    assert audio["num_tokens"] == CONFIG["audioproj"]["context_tokens"]
    assert audio["activation"] == "relu"
    face = nets.face_projection.config
    assert face["num_tokens"] == CONFIG["imageproj"]["clip_extra_context_tokens"]
    # Hallo's inner-width rule: a down block's first audio module is sized by the block's
    # input width, an up block's by its skip width, not by the features they read.
    heads = nets.backbone.config["attention_head_dim"]
    channels = unet["block_out_channels"]
    for i, block in enumerate(nets.backbone.down_blocks):
        for j, module in enumerate(block.audio_modules or ()):
            sizing = (channels[i - 1] if i else channels[0]) if j == 0 else channels[i]
            assert module.proj_in.out_channels == (sizing // heads) * heads


def write_state(path: Path, state: dict[str, torch.Tensor]) -> Path:
    (path / "hallo").mkdir(parents=True, exist_ok=True)
    for sub in ("stable-diffusion-v1-5", "wav2vec"):
        (path / sub).symlink_to(MODELS / sub, target_is_directory=True)
    torch.save(state, path / "hallo" / "net.pth")
    return path


def test_missing_key_is_named(tmp_path: Path) -> None:
    state = torch.load(MODELS / "hallo" / "net.pth", weights_only=True)
    del state["denoising_unet.down_blocks.0.audio_modules.0.proj_in.weight"]
    with pytest.raises(CheckpointError, match=r"audio_modules\.0\.proj_in\.weight"):
        load_hallo_networks(write_state(tmp_path, state))


def test_extra_key_is_named(tmp_path: Path) -> None:
    state = torch.load(MODELS / "hallo" / "net.pth", weights_only=True)
    state["reference_unet.conv_out.weight"] = torch.zeros(4, 32, 3, 3, dtype=torch.float16)
    with pytest.raises(CheckpointError, match=r"reference_unet\.conv_out\.weight"):
        load_hallo_networks(write_state(tmp_path, state))


def test_key_of_no_network_is_named(tmp_path: Path) -> None:
    state = torch.load(MODELS / "hallo" / "net.pth", weights_only=True)
    state["text_encoder.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match=r"text_encoder\.weight"):
        load_hallo_networks(write_state(tmp_path, state))


def test_truncated_net_pth_names_the_file(tmp_path: Path) -> None:
    data = (MODELS / "hallo" / "net.pth").read_bytes()
    root = write_state(tmp_path, {})
    (root / "hallo" / "net.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="net.pth"):
        load_hallo_networks(root)


class NotATensor:
    """An arbitrary object: a general unpickle would build it, weights_only refuses."""


def test_net_pth_is_never_unpickled_generally(tmp_path: Path) -> None:
    root = write_state(tmp_path, {})
    buffer = io.BytesIO()
    torch.save({"reference_unet.x": NotATensor()}, buffer)
    (root / "hallo" / "net.pth").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="net.pth"):
        load_hallo_networks(root)


def test_not_a_hallo_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"hallo/net\.pth"):
        load_hallo_networks(tmp_path)


# -- the golden numbers ----------------------------------------------------------------------
@pytest.mark.parametrize("item", ["step0.model_pred", "final_latents", "video"])
def test_clip0_matches_hallo(chained: dict[int, dict[str, torch.Tensor]], item: str) -> None:
    expected = golden("outputs/clip0.safetensors")[item]
    assert max_diff(chained[0][item], expected) <= TOLERANCE


@pytest.mark.parametrize("item", ["step0.model_pred", "final_latents", "video"])
def test_clip1_matches_hallo_from_the_golden_clip0(
    clip1_from_golden_clip0: dict[str, torch.Tensor], item: str
) -> None:
    expected = golden("outputs/clip1.safetensors")[item]
    assert max_diff(clip1_from_golden_clip0[item], expected) <= TOLERANCE


@pytest.mark.parametrize("item", ["step0.model_pred", "final_latents", "video"])
def test_clip1_matches_hallo_chained(
    chained: dict[int, dict[str, torch.Tensor]], item: str
) -> None:
    expected = golden("outputs/clip1.safetensors")[item]
    assert max_diff(chained[1][item], expected) <= CHAINED_TOLERANCE


def test_both_guidance_rows_are_compared(chained: dict[int, dict[str, torch.Tensor]]) -> None:
    expected = golden("outputs/clip0.safetensors")["step0.model_pred"]
    assert chained[0]["step0.model_pred"].shape[0] == expected.shape[0] == 2
    for row in range(2):
        assert max_diff(chained[0]["step0.model_pred"][row], expected[row]) <= TOLERANCE


# -- flipping one of Hallo's quirks breaks the match -----------------------------------------
def test_scaled_linear_betas_do_not_match() -> None:
    out = run(make_sampler(beta_schedule="scaled_linear"))
    expected = golden("outputs/clip0.safetensors")["final_latents"]
    assert max_diff(out[0]["final_latents"], expected) > 100 * TOLERANCE


def test_missing_face_tokens_do_not_match() -> None:
    conditions = golden_conditions()
    conditions.face_embedding = torch.zeros_like(conditions.face_embedding)
    out = run(make_sampler(), conditions)
    expected = golden("outputs/clip0.safetensors")["step0.model_pred"]
    assert max_diff(out[0]["step0.model_pred"], expected) > 100 * TOLERANCE


def test_eval_mode_motion_modules_do_not_match() -> None:
    sampler = make_sampler()
    # Hallo's eval branch also runs the temporal modules of the blocks without spatial
    # attention (with no motion frames there).
    for prefix in sampler.backbone.config["skip_motion_modules"]:
        sampler.backbone.get_submodule(prefix).run_motion_modules = True
    out = run(sampler)
    expected = golden("outputs/clip0.safetensors")["step0.model_pred"]
    assert max_diff(out[0]["step0.model_pred"], expected) > 100 * TOLERANCE


def test_full_size_networks_have_hallo_release_keys_and_shapes() -> None:
    # The key/shape list of Hallo's net.pth at Stable Diffusion 1.5 sizes (made from Hallo's
    # code): emo's networks built with hallo_configs on the meta device must match it.
    from emo.loaders.hallo import hallo_configs, hallo_network_classes
    from emo.models.sd15 import SD15_UNET_CONFIG

    listed = {}
    for line in (GOLDEN.parent / "hallo_net_keys_sd15.txt").read_text().splitlines():
        key, shape = line.split("\t")
        listed[key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    classes = hallo_network_classes()
    built = {}
    with torch.device("meta"):
        for name, config in hallo_configs(dict(SD15_UNET_CONFIG)).items():
            module = classes[name](**config)
            prefix = next(p for p, n in HALLO_PREFIXES.items() if n == name)
            built.update({f"{prefix}.{k}": tuple(v.shape) for k, v in module.state_dict().items()})
    assert built == listed
