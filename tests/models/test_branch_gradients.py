"""One backward pass through every EMO branch: each one learns, and each input matters."""

from __future__ import annotations

import torch

from emo.models.presets import get_preset


def _activate(module: torch.nn.Module, fragment: str) -> None:
    """Give the zero-initialised output projections whose name holds ``fragment`` small weights."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if fragment in name:
                param.normal_(0.0, 0.05)


def test_one_backward_pass_reaches_every_branch() -> None:
    torch.manual_seed(0)
    preset = get_preset("tiny")
    refnet, backbone = preset.build_reference_net(), preset.build_backbone()
    locator, projection = preset.build_face_locator(), preset.build_audio_projection()
    for fragment in (
        "audio_attn.to_out",
        "temporal_transformer.proj_out",
        "speed_attention.to_out",
    ):
        _activate(backbone, fragment)
    _activate(locator, "conv_out")
    b, f, n, size = 1, 4, 2, 8
    gen = torch.Generator().manual_seed(1)
    reference = torch.randn(b, 4, size, size, generator=gen, requires_grad=True)
    motion = torch.randn(b, 4, n, size, size, generator=gen, requires_grad=True)
    features = torch.randn(b, f, 1, 80, generator=gen, requires_grad=True)
    mask = torch.zeros(b, 1, f, size * 8, size * 8)
    mask[..., 16:48, 16:48] = 1.0
    noisy = torch.randn(b, 4, f, size, size, generator=gen)

    out = backbone(
        noisy + locator(mask),
        torch.tensor([500]),
        reference_features=refnet(reference, 0),
        audio_tokens=projection(features),
        motion_features=refnet.motion_features(motion),
        speed=torch.full((b, f), 0.5),
    )
    out.square().mean().backward()

    def has_grad(module: torch.nn.Module, fragment: str = "") -> bool:
        # attn2 (text cross-attention) and layers after the last feature tap get no gradient.
        grads = [p.grad for n, p in module.named_parameters() if fragment in n]
        return any(g is not None and g.abs().sum() > 0 for g in grads)

    assert has_grad(refnet), "ReferenceNet (reference and motion features)"
    assert has_grad(backbone, "audio_attn"), "audio attention"
    assert has_grad(backbone, "motion_modules"), "temporal modules"
    assert has_grad(backbone, "speed_encoder"), "speed layers"
    assert has_grad(locator), "face locator"
    assert has_grad(projection), "audio projection"
    for name, tensor in (("reference", reference), ("motion", motion), ("audio", features)):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, name
