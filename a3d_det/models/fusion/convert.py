"""2D -> 3D conversion of any CNN with a fusion operator (paper Sec. 1: A3D
"can be plugged into any 3D image model with ease").

``convert_2d_to_3d(net2d, fusion=dict(type='A3DConv'), num_slices=D)`` turns a
(pretrained) 2D network, e.g. torchvision's ResNet or DenseNet features, into
one that maps ``(B, C, D, H, W)`` to ``(B, C', D, H', W')``: every
``nn.Conv2d`` becomes the operator through its ``from_conv2d`` (so each
operator's own 2D-to-3D weight rule applies), and the layers around the
convolutions become their slice-by-slice 3D forms with the same weights and
statistics.

How ``thickness`` reaches the operators. The converted network keeps its own
``forward`` code (torchvision's), which calls each convolution with one
argument. The converter registers a forward pre-hook on every operator that
takes a thickness (``takes_thickness``, i.e. AlignShift); the hook adds the
thickness of the current call, which ``Converted3D.forward`` (or any caller,
with ``with slice_thickness(t):``) puts in a context variable for the
duration of the forward pass. No class is patched; the hook is a module-level
function, so converted networks deep-copy and pickle. A context variable is
per thread, so ``DataParallel`` replicas each see their own batch's value.
Its value is gone after the forward pass: segments recomputed in backward by
activation checkpointing must not contain thickness-taking operators
(AlignShift then stops with its "needs thickness" error, never silently).
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS

_THICKNESS: contextvars.ContextVar[Tensor | float | None] = \
    contextvars.ContextVar('a3d_det_slice_thickness', default=None)


@contextlib.contextmanager
def slice_thickness(thickness: Tensor | float | None) -> Iterator[None]:
    """Within the block, converted thickness-taking operators (AlignShift)
    called without a thickness use ``thickness`` (``(B,)`` mm, or a float)."""
    token = _THICKNESS.set(thickness)
    try:
        yield
    finally:
        _THICKNESS.reset(token)


def _add_thickness(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook: ``op(x)`` becomes ``op(x, thickness=<current>)``."""
    if len(args) < 2 and 'thickness' not in kwargs:
        kwargs = dict(kwargs, thickness=_THICKNESS.get())
    return args, kwargs


class SliceWise(nn.Module):
    """Run a 2D module on every slice: ``(B, C, D, H, W)`` ->
    ``(B*D, C, H, W)`` -> the module -> ``(B, C', D, H', W')``. Used for
    in-plane layers without an exact 3D form (``Upsample``, pixel shuffle,
    2D padding, ``InstanceNorm2d``)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module2d = module

    def forward(self, x: Tensor) -> Tensor:
        b, c, d, h, w = x.shape
        y = self.module2d(x.transpose(1, 2).reshape(b * d, c, h, w))
        return y.reshape(b, d, *y.shape[1:]).transpose(1, 2)


def _pair(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _depth_one(v: Any, depth: Any) -> tuple:
    """``k`` or ``(kh, kw)`` -> ``(depth, kh, kw)``."""
    return (depth, *_pair(v))


def _batch_norm_3d(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    """BatchNorm3d with ``bn``'s options, weights and running statistics. Over
    ``(B, D, H, W)`` it computes the same statistics as ``bn`` over the
    ``B * D`` slices, so it equals ``bn`` slice by slice in training too."""
    new = nn.BatchNorm3d(bn.num_features, eps=bn.eps, momentum=bn.momentum,
                         affine=bn.affine, track_running_stats=bn.track_running_stats)
    ref = bn.weight if bn.weight is not None else bn.running_mean
    if ref is not None:
        new = new.to(device=ref.device, dtype=ref.dtype)
    new.load_state_dict(bn.state_dict())
    if bn.affine:
        new.weight.requires_grad_(bn.weight.requires_grad)
        new.bias.requires_grad_(bn.bias.requires_grad)
    return new


def _convert_leaf(m: nn.Module) -> nn.Module | None:
    """The 3D form of a non-convolution layer, ``m`` itself if it already
    works on ``(B, C, D, H, W)``, or ``None`` if it has none."""
    if isinstance(m, nn.SyncBatchNorm):
        return m                      # any dimensionality; stays synchronisable
    if isinstance(m, nn.BatchNorm2d):
        return _batch_norm_3d(m)
    if isinstance(m, nn.MaxPool2d):
        return nn.MaxPool3d(_depth_one(m.kernel_size, 1), _depth_one(m.stride, 1),
                            _depth_one(m.padding, 0), _depth_one(m.dilation, 1),
                            return_indices=m.return_indices, ceil_mode=m.ceil_mode)
    if isinstance(m, nn.AvgPool2d):
        return nn.AvgPool3d(_depth_one(m.kernel_size, 1), _depth_one(m.stride, 1),
                            _depth_one(m.padding, 0), ceil_mode=m.ceil_mode,
                            count_include_pad=m.count_include_pad,
                            divisor_override=m.divisor_override)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d(_depth_one(m.output_size, None))
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveMaxPool3d(_depth_one(m.output_size, None), m.return_indices)
    if isinstance(m, nn.Dropout2d):
        return nn.Dropout3d(m.p, m.inplace)
    if isinstance(m, (nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle, nn.InstanceNorm2d,
                      nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d,
                      nn.ReplicationPad2d, nn.Softmax2d)):
        return SliceWise(m)
    if isinstance(m, (BaseFusionConv, SliceWise, nn.GroupNorm, nn.BatchNorm3d,
                      nn.InstanceNorm3d, nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d,
                      nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d, nn.Dropout,
                      nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.ChannelShuffle)):
        return m
    if type(m).__module__ == 'torch.nn.modules.activation' \
            and not isinstance(m, nn.MultiheadAttention):
        return m                      # element-wise (ReLU, SiLU, ...) or Softmax(dim)
    return None


def _green_channel(conv: nn.Conv2d, in_channels: int, path: str) -> nn.Conv2d:
    """The first convolution for ``in_channels`` inputs: as is, or (3 -> 1) its
    green-channel kernel (grey CT, as DenseNet3D's conv0)."""
    if in_channels == conv.in_channels:
        return conv
    if in_channels != 1 or conv.in_channels != 3:
        raise ValueError(f'convert_2d_to_3d: in_channels={in_channels} does not fit the '
                         f'first convolution {path!r} ({conv.in_channels} input channels); '
                         'use None to keep it, or 1 for an RGB (3-channel) one')
    grey = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                     device=conv.weight.device, dtype=conv.weight.dtype)
    grey.weight.data.copy_(conv.weight.data[:, 1:2])
    if conv.bias is not None:
        grey.bias.data.copy_(conv.bias.data)
    return grey


def convert_modules(module: nn.Module, fusion: dict, num_slices: int,
                    in_channels: int | None = None) -> nn.Module:
    """Convert ``module`` in place (see ``convert_2d_to_3d``) and return it
    (a new object if ``module`` itself is a leaf layer). Layers that already
    work on 5D tensors (operators, 3D layers) stay, so parts converted with
    another operator before are kept."""
    fusion = dict(fusion)
    op_cls = MODELS.get(fusion.pop('type', None) or '')
    if not (isinstance(op_cls, type) and issubclass(op_cls, BaseFusionConv)):
        raise ValueError(f'convert_2d_to_3d: fusion must name a registered fusion operator '
                         f'(NoFusionConv, I3DConv, P3DConv, ACSConv, TSMConv, '
                         f'AlignShiftConv, A3DConv), got {fusion!r}')
    if num_slices < 1:
        raise ValueError(f'convert_2d_to_3d: num_slices must be >= 1, got {num_slices}')
    first = [in_channels is not None]      # the first Conv2d still to adapt

    def convert(m: nn.Module, path: str) -> nn.Module:
        name = path or type(m).__name__
        if isinstance(m, nn.Conv2d):
            if first[0]:
                m, first[0] = _green_channel(m, in_channels, name), False
            try:
                op = op_cls.from_conv2d(m, num_slices=num_slices, **fusion)
            except (ValueError, TypeError) as e:
                raise ValueError(f'convert_2d_to_3d: cannot convert {name!r} ({m!r}) to '
                                 f'{op_cls.__name__}: {e}') from e
            op.train(m.training)
            if getattr(op, 'takes_thickness', False):
                op.register_forward_pre_hook(_add_thickness, with_kwargs=True)
            return op
        children = list(m.named_children())
        if not children or isinstance(m, (BaseFusionConv, SliceWise)):
            new = _convert_leaf(m)
            if new is None:
                raise ValueError(
                    f'convert_2d_to_3d: cannot convert {name!r} ({type(m).__name__}): '
                    'it has no slice-wise 3D form (e.g. a Linear head or a channel-last '
                    'LayerNorm); convert the part of the network before it')
            if new is not m:
                new.train(m.training)
            return new
        own = [n for n, _ in m.named_parameters(recurse=False)] + \
            [n for n, b in m.named_buffers(recurse=False) if b is not None]
        if own:
            raise ValueError(f'convert_2d_to_3d: cannot convert {name!r} '
                             f'({type(m).__name__}): its own tensors {own} are used by '
                             'its forward code, which the converter cannot check')
        for child_name, child in children:
            new = convert(child, f'{path}.{child_name}' if path else child_name)
            if new is not child:
                setattr(m, child_name, new)
        return m

    out = convert(module, '')
    if first[0]:
        raise ValueError('convert_2d_to_3d: in_channels was given but the network has '
                         'no nn.Conv2d to adapt')
    return out


@torch.no_grad()
def load_2d_state_dict(module: nn.Module, state: dict[str, Tensor],
                       ) -> tuple[list[str], list[str], list[str]]:
    """Load a 2D network's state_dict into its converted counterpart: the
    kernels of fusion operators through their ``from_conv2d`` rule
    (``load_conv2d_weight``), every other parameter and buffer as is.

    Args:
        module: the converted network (its module names are ``state``'s).
        state: the 2D state_dict; a 3-channel first kernel must already be
            cut to the network's input channels.

    Returns:
        ``(missing, mismatched, unexpected)``: keys the network needs but
        ``state`` lacks (``num_batches_tracked`` is never required), ``'key:
        file shape vs model shape'`` lines, and keys of ``state`` not used.
    """
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []

    def take(key: str, shape: tuple[int, ...]) -> Tensor | None:
        if key not in state:
            if not key.endswith('num_batches_tracked'):
                missing.append(key)
            return None
        used.add(key)
        if tuple(state[key].shape) != tuple(shape):
            mismatched.append(f'{key}: file {tuple(state[key].shape)} vs model {tuple(shape)}')
            return None
        return state[key]

    for name, m in module.named_modules():
        prefix = f'{name}.' if name else ''
        if isinstance(m, BaseFusionConv):
            k = m.kernel_size
            weight = take(prefix + 'weight', (m.out_channels, m.in_channels, k, k))
            bias = take(prefix + 'bias', (m.out_channels,)) if m.bias is not None else None
            if weight is not None:
                m.load_conv2d_weight(weight, bias)
            continue
        tensors = dict(m.named_parameters(recurse=False))
        tensors.update(m.named_buffers(recurse=False))
        for tname, tensor in tensors.items():
            if tensor is not None:
                value = take(prefix + tname, tuple(tensor.shape))
                if value is not None:
                    tensor.copy_(value)
    return missing, mismatched, [k for k in state if k not in used]


class Converted3D(nn.Module):
    """A converted network; ``forward(x, thickness=None)``.

    Attributes:
        network: the converted modules (the 2D network's structure and names).
        num_slices: D.
    """

    def __init__(self, network: nn.Module, num_slices: int) -> None:
        super().__init__()
        self.network = network
        self.num_slices = num_slices

    def forward(self, x: Tensor, thickness: Tensor | float | None = None) -> Any:
        """``x`` ``(B, C, D, H, W)`` with ``D == num_slices``, ``thickness``
        ``(B,)`` mm (only AlignShift reads it) -> the network's output, every
        map ``(B, C', D, H', W')``."""
        if x.dim() != 5 or x.shape[2] != self.num_slices:
            raise ValueError(f'converted network expects (B, C, {self.num_slices}, H, W), '
                             f'got {tuple(x.shape)}')
        with slice_thickness(thickness):
            return self.network(x)


def convert_2d_to_3d(module: nn.Module, fusion: dict | None = None,
                     num_slices: int = 3, in_channels: int | None = None) -> Converted3D:
    """Convert a 2D CNN into a 3D one with a context fusion operator.

    The input is left untouched (the conversion works on a deep copy):

    * ``nn.Conv2d`` -> the operator, ``Op.from_conv2d(conv, num_slices=D,
      **options)``: weights, bias, stride, padding kept (I3D inflates the
      kernel, ...); what the operator cannot express (groups, dilation, a
      string padding) is a ``ValueError`` naming the module's path;
    * ``BatchNorm2d`` -> ``BatchNorm3d`` with its weights and running
      statistics; ``SyncBatchNorm`` stays (it is dimension-agnostic);
      ``GroupNorm`` and activations stay;
    * ``MaxPool2d``/``AvgPool2d`` -> 3D pools with depth kernel and stride 1;
      ``AdaptiveAvg/MaxPool2d((h, w))`` -> ``(None, h, w)`` (D kept);
      ``Dropout2d`` -> ``Dropout3d``;
    * ``Upsample``, pixel shuffle, 2D padding, ``InstanceNorm2d`` run slice by
      slice (``SliceWise``);
    * a layer without such a form (``Linear``, ``LayerNorm``, ...) or a
      container with tensors of its own is a ``ValueError`` naming its path.

    Containers keep their own ``forward``, which must not depend on the 2D
    shape (torchvision's ResNet and DenseNet ``features`` do not; their
    classifiers, ``fc`` and ``classifier``, do: convert the part before them).

    With ``NoFusionConv``, or ``A3DConv`` with ``init_noise=0``, the result
    equals the 2D network on every slice (batch norm in eval mode; in
    training too, since BatchNorm3d's statistics over ``(B, D, H, W)`` are
    BatchNorm2d's over the ``B * D`` slices). GroupNorm normalises over the
    slices together, so it is not slice-by-slice.

    Args:
        module: the 2D network.
        fusion: the operator's config, ``dict(type='A3DConv', **options)``
            (default A3D with its defaults).
        num_slices: D.
        in_channels: ``None`` keeps the first convolution; ``1`` turns an RGB
            one into a grey one from its green-channel kernel.

    Returns:
        ``Converted3D``: ``forward(x, thickness=None)``, ``x`` ``(B, C, D, H,
        W)``; ``thickness`` ``(B,)`` in mm reaches every operator that takes it
        (see the module docstring for how).
    """
    fusion = dict(type='A3DConv') if fusion is None else fusion
    network = convert_modules(copy.deepcopy(module), fusion, num_slices, in_channels)
    return Converted3D(network, num_slices)
