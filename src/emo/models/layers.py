"""``Conv2d`` and ``Linear`` with faster CPU inference paths, chosen from the shapes alone.

Two measured weaknesses of the default CPU kernels, on the shapes of a Stable
Diffusion UNet (2-core AMD EPYC, torch 2.13; ``benchmarks/performance.py``):

* oneDNN convolutions (behind :func:`torch.nn.functional.conv2d`) are slow on the
  deepest levels run on one image: 1280 or 2560 input channels on an 8x8 or 4x4
  map. The same convolution as a matrix product (``unfold`` the input into columns,
  multiply by the weight viewed as a matrix) is 1.7x to 3.5x faster in float32 and
  3x to 10x faster in bfloat16. Larger maps and batches of frames stay with oneDNN,
  which wins there.
* float32 matrix products of :func:`torch.nn.functional.linear` (a BLAS ``sgemm``)
  run at about half the speed of oneDNN's on many token counts; the linear layer
  as a 1x1 oneDNN convolution over the tokens (a zero-copy view) is 1.6x to 6x
  faster there, and slower for a few tokens through a large weight, where the
  BLAS path is kept. Pointwise (1x1) convolutions of one image, which torch sends
  to BLAS on one thread, take the same oneDNN kernel.

The path depends only on the shapes, dtype and device, so a given input always takes
the same path and gives the same output. Both paths are used for inference only (no
gradient recorded); training always runs the standard functions. Every other device
(CUDA) runs the standard functions too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv2d", "Linear", "conv2d_as_matmul", "linear_as_onednn", "prefers_matmul"]

#: Low-precision dtypes whose CPU convolutions follow the bfloat16 thresholds.
_LOW_PRECISION = (torch.bfloat16, torch.float16)
#: Products smaller than this (multiply-adds) keep the default kernels: call overhead dominates.
_MIN_MACS = 1 << 23
#: Whether this torch build has oneDNN (read once: the check is not traceable).
_HAS_ONEDNN = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]


def _custom_path_allowed(x: torch.Tensor) -> bool:
    """Inference on the CPU, outside ``torch.compile`` (which chooses its own kernels)."""
    return (
        x.device.type == "cpu" and not torch.is_grad_enabled() and not torch.compiler.is_compiling()
    )


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype an operation on ``x`` computes in (the CPU autocast dtype when active)."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        return x.dtype
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        if torch.is_autocast_enabled("cpu"):
            return torch.get_autocast_dtype("cpu")
    elif torch.is_autocast_cpu_enabled():
        return torch.get_autocast_cpu_dtype()
    return x.dtype


def prefers_matmul(
    in_channels: int, pixels: int, dtype: torch.dtype, device: torch.device | str
) -> bool:
    """Whether a stride-1 convolution is faster as a matrix product than through oneDNN.

    Parameters
    ----------
    in_channels
        Input channels of the convolution.
    pixels
        Output positions over the whole batch, ``b * h * w``.
    dtype
        The dtype the product computes in.
    device
        Where it runs (only the CPU has a matrix-product path).

    Returns
    -------
    bool
        ``True`` for the shapes measured faster as a matrix product: float32 with at
        least 1280 input channels and at most 64 positions; bfloat16/float16 with at
        least 1280 channels and 256 positions, or 640 channels and 64 positions.
    """
    if torch.device(device).type != "cpu":
        return False
    if dtype == torch.float32:
        return in_channels >= 1280 and pixels <= 64
    if dtype in _LOW_PRECISION:
        return (in_channels >= 1280 and pixels <= 256) or (in_channels >= 640 and pixels <= 64)
    return False


def conv2d_as_matmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> torch.Tensor:
    """A stride-1, ungrouped 2D convolution computed as ``weight @ unfold(x)``.

    Parameters
    ----------
    x
        Input ``(b, c_in, h, w)``.
    weight
        ``(c_out, c_in, kh, kw)``.
    bias
        ``(c_out,)`` or ``None``.
    padding
        Zero padding ``(ph, pw)``.
    dilation
        Kernel dilation ``(dh, dw)``.

    Returns
    -------
    torch.Tensor
        ``(b, c_out, h_out, w_out)``, equal to ``F.conv2d(x, weight, bias, 1, padding,
        dilation)`` up to float rounding.
    """
    x = x.to(_compute_dtype(x))  # cast before unfolding: the columns are kh*kw times larger
    batch, _, height, width = x.shape
    kh, kw = int(weight.shape[-2]), int(weight.shape[-1])
    out_h = height + 2 * padding[0] - dilation[0] * (kh - 1)
    out_w = width + 2 * padding[1] - dilation[1] * (kw - 1)
    if (kh, kw) == (1, 1) and padding == (0, 0):
        columns = x.reshape(batch, x.shape[1], height * width)
    else:
        columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding)
    matrix = weight.reshape(weight.shape[0], -1)
    if batch == 1:
        if bias is None:
            out = torch.mm(matrix, columns[0])[None]
        else:
            out = torch.addmm(bias[:, None], matrix, columns[0])[None]
    else:
        out = torch.matmul(matrix, columns)
        if bias is not None:
            out = out + bias[:, None].to(out.dtype)
    return out.reshape(batch, -1, out_h, out_w)


def _prefers_onednn_linear(tokens: int, weight: torch.Tensor, x: torch.Tensor) -> bool:
    if not _HAS_ONEDNN or _compute_dtype(x) != torch.float32:
        return False
    macs = tokens * weight.numel()
    return macs >= _MIN_MACS and (tokens >= 256 or weight.numel() <= 2_000_000)


def linear_as_onednn(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``F.linear`` computed by oneDNN as a 1x1 convolution over the tokens.

    The ``(n, c_in)`` token matrix is the channels-last layout of a ``(1, c_in, 1, n)``
    image, so neither the input nor the output is copied.

    Parameters
    ----------
    x
        Tokens ``(..., c_in)`` (float32, on the CPU).
    weight
        ``(c_out, c_in)``.
    bias
        ``(c_out,)`` or ``None``.

    Returns
    -------
    torch.Tensor
        ``(..., c_out)``, equal to ``F.linear(x, weight, bias)`` up to float rounding.
    """
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    n, k = flat.shape
    image = flat.as_strided((1, k, 1, n), (n * k, 1, n * k, k))
    out = torch.mkldnn_convolution(image, weight[:, :, None, None], bias, [0, 0], [1, 1], [1, 1], 1)
    return out.permute(0, 2, 3, 1).reshape(*lead, weight.shape[0])


class Conv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` (same parameters and state dict) with the CPU matrix-product path.

    See the module notes: in inference, a stride-1, ungrouped, zero-padded convolution
    whose shapes :func:`prefers_matmul` names runs as :func:`conv2d_as_matmul`;
    everything else (and anything that records gradients) runs as usual.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Convolve ``(b, c_in, h, w)`` into ``(b, c_out, h_out, w_out)``."""
        if not _custom_path_allowed(input):
            out: torch.Tensor = super().forward(input)
            return out
        if (
            input.ndim == 4
            and self.groups == 1
            and self.stride == (1, 1)
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and prefers_matmul(
                self.in_channels,
                input.shape[0] * input.shape[2] * input.shape[3],
                _compute_dtype(input),
                input.device,
            )
        ):
            padding = (int(self.padding[0]), int(self.padding[1]))
            dilation = (int(self.dilation[0]), int(self.dilation[1]))
            return conv2d_as_matmul(input, self.weight, self.bias, padding, dilation)
        if (
            self.kernel_size == (1, 1)
            and input.ndim == 4
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and _prefers_onednn_linear(
                input.shape[0] * input.shape[2] * input.shape[3], self.weight, input
            )
        ):
            # A pointwise convolution is a linear layer over the pixels: the same oneDNN
            # kernel (torch's own dispatch sends it to BLAS for one image on one thread).
            return torch.mkldnn_convolution(
                input,
                self.weight,
                self.bias,
                list(self.padding),
                list(self.stride),
                list(self.dilation),
                self.groups,
            )
        return super().forward(input)


class Linear(nn.Linear):
    """:class:`torch.nn.Linear` (same parameters and state dict) with the CPU oneDNN path.

    See the module notes: in float32 inference on the CPU, products with many tokens
    (or a small weight) run as :func:`linear_as_onednn`; everything else runs as usual.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``."""
        if (
            _custom_path_allowed(input)
            and input.ndim >= 2
            and input.dtype == self.weight.dtype
            and _prefers_onednn_linear(input.numel() // self.in_features, self.weight, input)
        ):
            return linear_as_onednn(input, self.weight, self.bias)
        out: torch.Tensor = super().forward(input)
        return out
