"""The CPU inference paths of emo.models.layers: same results as torch's functions, right route."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from emo.models.layers import Conv2d, Linear, conv2d_as_matmul, linear_as_onednn, prefers_matmul


class OpNames(TorchDispatchMode):
    """Records the aten operators a block of code runs."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


def ops_of(fn: Any, *args: Any) -> tuple[Any, list[str]]:
    with OpNames() as mode:
        out = fn(*args)
    return out, mode.names


@pytest.mark.parametrize(
    ("batch", "kernel", "padding", "dilation", "bias"),
    [(1, 3, 1, 1, True), (3, 3, 1, 1, False), (2, 3, 2, 2, True), (1, 1, 0, 1, True)],
)
def test_conv_as_matmul_equals_conv2d(
    batch: int, kernel: int, padding: int, dilation: int, bias: bool
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 6, 7, 5, generator=gen)
    weight = torch.randn(4, 6, kernel, kernel, generator=gen)
    b = torch.randn(4, generator=gen) if bias else None
    expected = F.conv2d(x, weight, b, padding=padding, dilation=dilation)
    got = conv2d_as_matmul(x, weight, b, (padding, padding), (dilation, dilation))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_prefers_matmul_only_for_deep_small_maps_on_cpu() -> None:
    assert prefers_matmul(1280, 64, torch.float32, "cpu")
    assert prefers_matmul(2560, 16, torch.float32, "cpu")
    assert not prefers_matmul(1280, 256, torch.float32, "cpu")  # 16x16: oneDNN wins
    assert not prefers_matmul(320, 64, torch.float32, "cpu")
    assert prefers_matmul(1280, 256, torch.bfloat16, "cpu")
    assert prefers_matmul(640, 64, torch.bfloat16, "cpu")
    assert not prefers_matmul(640, 256, torch.bfloat16, "cpu")
    assert not prefers_matmul(1280, 64, torch.float32, "meta")  # other devices: never


def test_conv2d_routes_deep_small_maps_through_matmul_in_inference() -> None:
    torch.manual_seed(0)
    conv = Conv2d(1280, 8, kernel_size=3, padding=1)
    x = torch.randn(1, 1280, 4, 4)
    with torch.no_grad():
        got, names = ops_of(conv, x)
        expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert "im2col" in names and "convolution" not in names
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    # Recording gradients: the standard convolution, and its gradients.
    x.requires_grad_(True)
    out, names = ops_of(conv, x)
    assert "convolution" in names and "im2col" not in names
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    # A larger map stays with the standard kernel.
    with torch.no_grad():
        _, names = ops_of(conv, torch.randn(1, 1280, 16, 16))
    assert "convolution" in names and "im2col" not in names


def test_conv2d_matmul_path_under_bfloat16_autocast() -> None:
    torch.manual_seed(0)
    conv = Conv2d(1280, 8, kernel_size=3, padding=1)
    x = torch.randn(1, 1280, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got, names = ops_of(conv, x)
        expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert "im2col" in names
    assert got.dtype == expected.dtype == torch.bfloat16
    scale = expected.float().abs().max()
    assert (got.float() - expected.float()).abs().max() <= 0.02 * scale


def test_linear_and_pointwise_conv_onednn_paths_equal_the_standard_ones() -> None:
    torch.manual_seed(0)
    linear = Linear(320, 640)
    tokens = torch.randn(2, 512, 320)
    with torch.no_grad():
        got, names = ops_of(linear, tokens)
        expected = F.linear(tokens, linear.weight, linear.bias)
    assert "mkldnn_convolution" in names
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        linear_as_onednn(tokens, linear.weight, None), tokens @ linear.weight.T
    )
    # Few tokens through a large weight, or a tiny product: the standard kernel.
    with torch.no_grad():
        _, names = ops_of(Linear(1280, 10240), torch.randn(64, 1280))
        assert "mkldnn_convolution" not in names
        _, names = ops_of(Linear(16, 16), torch.randn(8, 16))
        assert "mkldnn_convolution" not in names
    pointwise = Conv2d(320, 320, kernel_size=1)
    image = torch.randn(1, 320, 32, 32)
    with torch.no_grad():
        got, names = ops_of(pointwise, image)
        expected = F.conv2d(image, pointwise.weight, pointwise.bias)
    assert "mkldnn_convolution" in names
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_layers_keep_the_torch_state_dict_layout() -> None:
    conv, linear = Conv2d(4, 8, 3, padding=1), Linear(4, 8)
    assert isinstance(conv, torch.nn.Conv2d) and isinstance(linear, torch.nn.Linear)
    assert set(conv.state_dict()) == {"weight", "bias"} == set(linear.state_dict())
