"""MotionFeatures: an explicit frame axis, batch-1 sharing, and each sample's own frame order."""

from __future__ import annotations

import pytest
import torch
from model_configs import TINY_UNET

from emo.errors import InputError
from emo.models import Backbone, MotionFeatures, ReferenceNet, UNet2D

CONFIG = TINY_UNET
BRANCHES, F, N = 3, 3, 4


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nets() -> tuple[ReferenceNet, Backbone]:
    torch.manual_seed(0)
    unet = UNet2D(**CONFIG).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    backbone = Backbone.from_unet2d(
        unet, audio_cross_attention_dim=None, speed_embed_dim=None, motion_num_attention_heads=4
    ).eval()
    # Trained-like temporal modules: the motion frames now change the output.
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if "motion_modules" in name and "proj_out" in name:
                p.normal_(0.0, 0.2)
    return ReferenceNet.from_unet2d(unet).eval(), backbone


def _distinct_motion_latents(batch: int = 1, seed: int = 3) -> torch.Tensor:
    # Clearly distinct frames: frame i is shifted by 2 i.
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, 4, 1, 8, 8, generator=gen)
    return base + 2.0 * torch.arange(N, dtype=torch.float32).view(1, 1, N, 1, 1)


def test_motion_features_have_a_frame_axis_in_frame_order(
    nets: tuple[ReferenceNet, Backbone],
) -> None:
    refnet, backbone = nets
    latents = _distinct_motion_latents(batch=2)
    with torch.no_grad():
        motion = refnet.motion_features(latents)
        per_frame = [refnet(latents[:, :, i], 0) for i in range(N)]
    assert motion.batch_size == 2 and motion.num_frames == N
    assert sorted(motion.layers) == sorted(backbone.motion_module_keys)
    for key, layer in motion.layers.items():
        for i in range(N):
            torch.testing.assert_close(layer[:, :, i], per_frame[i].layers[key])
    # Regrouping a (b n) ReferenceNet output gives the same thing.
    flat = latents.permute(0, 2, 1, 3, 4).reshape(2 * N, 4, 8, 8)
    with torch.no_grad():
        regrouped = MotionFeatures.from_reference_features(refnet(flat, 0), num_frames=N)
    for key in motion.layers:
        torch.testing.assert_close(regrouped.layers[key], motion.layers[key])
    with pytest.raises(InputError, match="num_frames"):
        MotionFeatures.from_reference_features(refnet(flat[:5], 0), num_frames=N)


def test_three_guidance_branches_share_one_clip_of_distinct_motion_frames(
    nets: tuple[ReferenceNet, Backbone],
) -> None:
    refnet, backbone = nets
    gen = torch.Generator().manual_seed(4)
    sample = torch.randn(1, 4, F, 8, 8, generator=gen).expand(BRANCHES, -1, -1, -1, -1)
    with torch.no_grad():
        motion = refnet.motion_features(_distinct_motion_latents())
        shared = backbone(sample, 5, motion_features=motion)
        alone = backbone(sample[:1], 5, motion_features=motion)
        copied = backbone(sample, 5, motion_features=motion.repeat_interleave(BRANCHES))
        reordered = MotionFeatures({k: v.flip(2) for k, v in motion.layers.items()})
        other_order = backbone(sample[:1], 5, motion_features=reordered)
        # What the old (b n) layout did for 3 branches: branch 0 got frames [m0, m0, m0, m1].
        scrambled = MotionFeatures({k: v[:, :, [0, 0, 0, 1]] for k, v in motion.layers.items()})
        wrong = backbone(sample[:1], 5, motion_features=scrambled)
    for branch in range(BRANCHES):  # every branch sees all four frames, in order
        torch.testing.assert_close(shared[branch : branch + 1], alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(copied, shared, rtol=1e-5, atol=1e-6)
    assert (other_order - alone).abs().max() > 1e-3  # the frame order matters
    assert (wrong - alone).abs().max() > 1e-3


def test_per_sample_motion_frames_stay_with_their_sample(
    nets: tuple[ReferenceNet, Backbone],
) -> None:
    refnet, backbone = nets
    gen = torch.Generator().manual_seed(5)
    sample = torch.randn(2, 4, F, 8, 8, generator=gen)
    latents = _distinct_motion_latents(batch=2)
    with torch.no_grad():
        both = backbone(sample, 5, motion_features=refnet.motion_features(latents))
        for i in range(2):
            own = refnet.motion_features(latents[i : i + 1])
            torch.testing.assert_close(
                both[i : i + 1],
                backbone(sample[i : i + 1], 5, motion_features=own),
                rtol=1e-5,
                atol=1e-6,
            )
    assert (both[0] - both[1]).abs().max() > 1e-3


def test_zero_motion_features_are_views_of_one_zero_map(
    nets: tuple[ReferenceNet, Backbone],
) -> None:
    refnet, backbone = nets
    with torch.no_grad():
        reference = refnet(torch.randn(1, 4, 8, 8), 0)
    zeros = MotionFeatures.zeros(reference.layers, num_frames=N)
    assert zeros.num_frames == N and zeros.batch_size == 1
    for key, layer in zeros.layers.items():
        c, h, w = reference.layers[key].shape[1:]
        assert layer.shape == (1, c, N, h, w)
        assert layer.stride(2) == 0  # one map, not N copies
        assert torch.count_nonzero(layer) == 0
    with torch.no_grad():
        out = backbone(torch.randn(2, 4, F, 8, 8), 5, motion_features=zeros)
    assert out.shape == (2, 4, F, 8, 8)
