"""Shared base of the 3D context fusion operators (paper Sec. 2.1).

Every operator maps a 3D feature ``(B, Cin, D, H, W)`` to ``(B, Cout, D, H', W')``
with a (pretrainable) 2D kernel ``W2D`` of shape ``(Cout, Cin, K, K)``. Stride
and padding act in-plane only; the number of slices ``D`` is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IntOrPair = int | tuple[int, int]

#: PyTorch's CPU convolution uses oneDNN for a batch-1 3D input only when
#: ``N * C * D * H > 20480`` (aten ``use_mkldnn``); below it, its vol2col
#: kernel is 3-10x slower than a 2D oneDNN convolution of the slices.
_ONEDNN_3D_MIN = 20480


def _as_pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """Turn ``int`` or ``(a, b)`` into a pair of non-negative ints."""
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 \
            and all(isinstance(v, int) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    if min(pair) < 0:
        raise ValueError(f'{name} must be non-negative, got {value!r}')
    return pair


#: What a shifted channel group reads beyond the first/last slice.
PAD_MODES = ('zero', 'own')


def shift_slices(x: Tensor, n_fold: int = 8,
                 alpha: Tensor | None = None, pad_mode: str = 'zero') -> Tensor:
    """Channel shift along depth used by TSM and AlignShift (Sec. 2.1 (e)).

    With ``fold = C // n_fold``: channels ``[0, fold)`` take the next slice's
    value, ``[fold, 2 * fold)`` the previous slice's; the rest stay. With
    ``alpha`` (AlignShift) the shifted channels become
    ``alpha * own + (1 - alpha) * neighbour``.

    Beyond the volume the neighbour is zero (``pad_mode='zero'``, TSM) or the
    slice itself (``pad_mode='own'``: the first/last slice of a shifted
    group keeps its own value, the published AlignShift's
    ``shift_padding_zero=False``).

    Args:
        x: ``(B, C, D, H, W)``.
        n_fold: divisor of the channels shifted each way.
        alpha: ``(B,)`` weights of the own slice, or ``None`` for a pure shift.
        pad_mode: ``'zero'`` or ``'own'``.

    Returns:
        ``(B, C, D, H, W)``; ``x`` is not modified (and is returned as is
        when ``C < n_fold``: nothing to shift). Out-of-place, so autograd is
        exact.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
    fold = x.shape[1] // n_fold
    if fold == 0:
        return x
    up, down = x[:, :fold], x[:, fold:2 * fold]
    if pad_mode == 'zero':
        nxt = F.pad(up[:, :, 1:], (0, 0, 0, 0, 0, 1))      # slice d takes d + 1
        prv = F.pad(down[:, :, :-1], (0, 0, 0, 0, 1, 0))   # slice d takes d - 1
    else:  # the neighbour beyond the volume is the slice itself
        nxt = torch.cat([up[:, :, 1:], up[:, :, -1:]], dim=2)
        prv = torch.cat([down[:, :, :1], down[:, :, :-1]], dim=2)
    if alpha is not None:
        a = alpha.to(x.dtype).view(-1, 1, 1, 1, 1)
        nxt, prv = torch.lerp(nxt, up, a), torch.lerp(prv, down, a)
    # one concatenation writes the output once (no clone + slice assignments)
    return torch.cat([nxt, prv, x[:, 2 * fold:]], dim=1)


@dataclass(frozen=True)
class SliceConv:
    """A 1 x K x K convolution of every slice as one N-d convolution
    (:meth:`BaseFusionConv.slice_conv`): its ``input`` (a view or copy of the
    ``(B, Cin, D, H, W)`` feature map), ``weight``, ``stride`` and
    ``padding``, and how its tensors map back to 5D."""
    input: Tensor
    weight: Tensor
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    shape: tuple[int, int, int, int, int]     # the 5D input's (B, Cin, D, H, W)
    slices_first: bool                        # input is (B * D, Cin, H, W)

    def forward(self, bias: Tensor | None) -> Tensor:
        """The convolution, its output as ``(B, Cout, D, H', W')``."""
        conv = F.conv2d if self.input.dim() == 4 else F.conv3d
        return self.output(conv(self.input, self.weight, bias, self.stride, self.padding))

    def output(self, y: Tensor) -> Tensor:
        """The convolution's output as ``(B, Cout, D, H', W')`` (a view)."""
        b, _, d, _, _ = self.shape
        if self.slices_first:
            return y.view(b, d, *y.shape[1:]).transpose(1, 2)
        if y.dim() == 4:                      # (B, Cout, D * H, W)
            return y.view(b, y.shape[1], d, -1, y.shape[-1])
        return y

    def grad_output(self, g: Tensor) -> Tensor:
        """A gradient of :meth:`output` in the convolution's output shape."""
        b, _, d, _, _ = self.shape
        if self.slices_first:
            return g.transpose(1, 2).reshape(b * d, *g.shape[1:2], *g.shape[3:])
        if self.input.dim() == 4:
            return g.reshape(b, g.shape[1], -1, g.shape[-1])
        return g

    def grad_input(self, g: Tensor) -> Tensor:
        """A gradient of ``input`` as ``(B, Cin, D, H, W)`` (a view where its
        layout allows)."""
        b, c, d, h, w = self.shape
        if self.slices_first:
            return g.reshape(b, d, c, h, w).transpose(1, 2)
        return g.reshape(b, c, d, h, w)

    def backward(self, grad: Tensor, bias: bool,
                 needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, ...]:
        """Gradients of the input (5D), of ``weight`` (in its shape here,
        4D or 5D) and of the bias from the gradient ``grad`` of the 5D
        output; ``needs`` says which to compute."""
        n = self.input.dim() - 2
        g_in, g_w, g_b = torch.ops.aten.convolution_backward(
            self.grad_output(grad), self.input, self.weight,
            [self.weight.shape[0]] if bias else None, self.stride, self.padding,
            [1] * n, False, [0] * n, 1, list(needs))
        return (None if g_in is None else self.grad_input(g_in),
                g_w, g_b)


class BaseFusionConv(nn.Module):
    """Base of the fusion operators: the 2D kernel, in-plane conv, conversion.

    Args:
        in_channels: ``Cin``.
        out_channels: ``Cout``.
        kernel_size: ``K`` (an int or a square pair).
        stride: in-plane stride (int or pair).
        padding: in-plane zero padding (int or pair).
        bias: add a learnable bias ``(Cout,)``.
        num_slices: ``D``, the number of slices the operator is built for.

    Attributes:
        weight: the 2D-pretrainable kernel ``(Cout, Cin, K, K)`` (I3D overrides
            it with a 3D kernel ``(Cout, Cin, K, K, K)``).
        bias: ``(Cout,)`` or ``None``.
    """

    #: whether ``forward`` takes ``thickness`` (only AlignShift).
    takes_thickness: bool = False
    #: whether the kernel also runs along depth with padding K // 2, so K must
    #: be odd to keep the number of slices (I3D, ACS).
    depth_kernel: bool = False

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, bias: bool = False,
                 num_slices: int = 3) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError('in_channels and out_channels must be positive, '
                             f'got {in_channels}, {out_channels}')
        kernel = _as_pair(kernel_size, 'kernel_size')
        if kernel[0] != kernel[1] or kernel[0] == 0:
            raise ValueError(f'{type(self).__name__} needs a square K x K kernel, '
                             f'got kernel_size={kernel_size!r}')
        if self.depth_kernel and kernel[0] % 2 == 0:
            raise ValueError(f'{type(self).__name__} needs an odd kernel_size to keep '
                             f'the number of slices, got {kernel[0]}')
        if num_slices <= 0:
            raise ValueError(f'num_slices must be positive, got {num_slices}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel[0]
        self.stride = _as_pair(stride, 'stride')
        if min(self.stride) == 0:
            raise ValueError(f'stride must be positive, got {stride!r}')
        self.padding = _as_pair(padding, 'padding')
        self.num_slices = num_slices
        self.weight = nn.Parameter(torch.empty(self._weight_shape()))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def _weight_shape(self) -> tuple[int, ...]:
        k = self.kernel_size
        return (self.out_channels, self.in_channels, k, k)

    def reset_parameters(self) -> None:
        """Initialise as ``nn.Conv2d`` does (Kaiming uniform, a = sqrt(5))."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    # -- 2D -> 3D conversion -------------------------------------------------
    @torch.no_grad()
    def load_conv2d_weight(self, weight: Tensor,
                           bias: Tensor | None = None) -> None:
        """Load a 2D kernel ``(Cout, Cin, K, K)`` (and bias) by this operator's
        conversion rule (the rule of ``from_conv2d``)."""
        expected = (self.out_channels, self.in_channels,
                    self.kernel_size, self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f'{type(self).__name__}: 2D kernel of shape '
                             f'{tuple(weight.shape)} does not fit {expected}')
        self._convert_2d_kernel(weight)
        if bias is not None:
            if self.bias is None:
                raise ValueError(f'{type(self).__name__} was built with bias=False '
                                 'but a bias was given')
            self.bias.copy_(bias)

    def _convert_2d_kernel(self, weight: Tensor) -> None:
        """Default rule: the 2D kernel is used as is (no fusion, P3D, ACS,
        TSM, AlignShift, A3D)."""
        self.weight.copy_(weight)

    @classmethod
    def from_conv2d(cls, conv2d: nn.Conv2d, num_slices: int = 3,
                    **options: Any) -> BaseFusionConv:
        """Convert a (pretrained) ``nn.Conv2d`` into this operator.

        On an input constant along depth the result reproduces ``conv2d`` on
        every slice (I3D, TSM, AlignShift: on the inner slices; ACS: its axial
        third, the other two thirds run the same kernel in the coronal and
        sagittal views).

        Args:
            conv2d: a 2D convolution with square kernel, groups 1, dilation 1
                and zero padding.
            num_slices: ``D``.
            **options: operator options (``n_fold``, ``ref_thickness``, ...).
        """
        if not isinstance(conv2d, nn.Conv2d):
            raise TypeError(f'from_conv2d expects nn.Conv2d, got {type(conv2d).__name__}')
        if conv2d.groups != 1 or tuple(conv2d.dilation) != (1, 1):
            raise ValueError('from_conv2d supports groups=1 and dilation=1 only, '
                             f'got groups={conv2d.groups}, dilation={conv2d.dilation}')
        if conv2d.padding_mode != 'zeros' or isinstance(conv2d.padding, str):
            raise ValueError('from_conv2d supports numeric zero padding only, got '
                             f'padding={conv2d.padding!r}, mode={conv2d.padding_mode!r}')
        op = cls(conv2d.in_channels, conv2d.out_channels,
                 tuple(conv2d.kernel_size), stride=tuple(conv2d.stride),
                 padding=tuple(conv2d.padding), bias=conv2d.bias is not None,
                 num_slices=num_slices, **options)
        op = op.to(device=conv2d.weight.device, dtype=conv2d.weight.dtype)
        op.load_conv2d_weight(conv2d.weight, conv2d.bias)
        return op

    # -- forward helpers -----------------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects (B, {self.in_channels}, '
                             f'D, H, W), got {tuple(x.shape)}')

    def conv_slices(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """The 1 x K x K convolution of every slice with the 2D kernel.

        Computed with 2D convolutions where PyTorch's CPU backend would
        otherwise pick its slow (vol2col) 3D kernel; the arithmetic is that of
        ``F.conv3d(x, w.unsqueeze(2), bias, (1, *stride), (0, *padding))``
        (:meth:`slice_conv` says which convolution runs).

        Args:
            x: ``(B, Cin, D, H, W)``.
            weight: ``(Cout, Cin, K, K)``; defaults to ``self.weight``.

        Returns:
            ``(B, Cout, D, H', W')``.
        """
        return self.slice_conv(x, self.weight if weight is None else weight).forward(self.bias)

    def slice_conv(self, x: Tensor, weight: Tensor) -> SliceConv:
        """The convolution :meth:`conv_slices` runs on ``x`` ``(B, Cin, D, H, W)``:

        * 1 x 1, stride 1, no padding: one 2D 1 x 1 convolution of the
          ``(B, Cin, D * H, W)`` view (no copy);
        * K x K on small CPU maps (below oneDNN's threshold for 3D inputs of
          batch 1, ``Cin * D * H <= 20480``): a 2D convolution of the slices
          as a ``(B * D, Cin, H, W)`` batch (a view where ``x`` lies slices
          first, ``x.transpose(1, 2).is_contiguous()``, else one copy; the
          result is a transposed view);
        * otherwise ``F.conv3d`` with the kernel as ``(Cout, Cin, 1, K, K)``
          (oneDNN).
        """
        b, c, d, h, wd = x.shape
        kind = self.slice_conv_kind(x.shape, x.device, weight.dim())
        if kind == 'view2d':
            return SliceConv(x.reshape(b, c, d * h, wd), weight, (1, 1), (0, 0),
                             (b, c, d, h, wd), slices_first=False)
        if kind == 'slices2d':
            return SliceConv(x.transpose(1, 2).reshape(b * d, c, h, wd), weight,
                             self.stride, self.padding, (b, c, d, h, wd), slices_first=True)
        return SliceConv(x, weight.unsqueeze(2) if weight.dim() == 4 else weight,
                         (1, *self.stride), (0, *self.padding), (b, c, d, h, wd),
                         slices_first=False)

    def slice_conv_kind(self, shape: torch.Size, device: torch.device,
                        weight_dim: int = 4) -> str:
        """``'view2d'``, ``'slices2d'`` or ``'conv3d'``: the three cases of
        :meth:`slice_conv` for an input of this shape on this device."""
        b, c, d, h, _ = shape
        if weight_dim == 4 and device.type == 'cpu':
            if self.kernel_size == 1 and self.stride == (1, 1) and self.padding == (0, 0):
                return 'view2d'
            if b == 1 and c * d * h <= _ONEDNN_3D_MIN:
                return 'slices2d'
        return 'conv3d'

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}, '
             f'padding={self.padding}, num_slices={self.num_slices}')
        if self.bias is None:
            s += ', bias=False'
        return s
