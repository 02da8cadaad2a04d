"""The dense block of DenseNet3D (paper Sec. 2.3, Fig. 2): dense layers whose
two convolutions are the 3D context fusion operator, each reading the
concatenation of the block input and every earlier layer's output.

The concatenation is not re-made by every layer (torchvision's DenseNet does
that, copying ``sum_l C_l`` channels per block, quadratic in the number of
layers): a batch-1 block writes each layer's output once into a buffer that
holds the whole block output, and every layer reads its input as a channel
prefix of that buffer, a view (:class:`_GrowBuffer`). The values are those of
the concatenation; autograd sees the same graph (the gradient of a prefix is
split between the earlier prefix and the new layer's output), and the inputs
that batch norm saves for backward are views of the one buffer instead of
``L`` separate concatenations, so training needs less memory too. (With
autograd on, a block output is a view that refuses in-place changes, which
would corrupt the gradient; apply out-of-place operations to it.)
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ContextManager

import torch
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from a3d_det.models.backbones.norm import build_norm_layer
from a3d_det.models.fusion import NoFusionConv
from a3d_det.registry import MODELS


@contextlib.contextmanager
def _keep_norm_statistics(norm: nn.Module) -> Iterator[None]:
    """Restore ``norm``'s running statistics (and ``num_batches_tracked``) on
    exit: the recompute of a checkpointed batch norm in the backward pass must
    not update them a second time."""
    saved = {name: buf.clone() for name, buf in norm.named_buffers(recurse=False)
             if buf is not None}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                getattr(norm, name).copy_(value)


def _call(op: nn.Module, x: Tensor, thickness: Tensor | None) -> Tensor:
    """Run a fusion operator, passing ``thickness`` only to those that take it."""
    if getattr(op, 'takes_thickness', False):
        return op(x, thickness)
    return op(x)


class _GrowBuffer(torch.autograd.Function):
    """``buffer[:, :c + g]`` as the concatenation ``cat([prefix, new], 1)``.

    The caller has already written ``prefix`` (``c`` channels, ``None`` when
    ``c = 0``) and ``new`` (``g`` channels) into ``buffer``; the output is a
    view of it. Backward routes the gradient's channel slices to ``prefix``
    and ``new``, exactly the gradient of ``torch.cat``.
    """

    @staticmethod
    def forward(ctx, buffer: Tensor, prefix: Tensor | None, new: Tensor) -> Tensor:
        ctx.split = 0 if prefix is None else prefix.shape[1]
        return buffer[:, :ctx.split + new.shape[1]]

    @staticmethod
    def backward(ctx, grad: Tensor):
        s = ctx.split
        return None, (grad[:, :s] if s else None), grad[:, s:]


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1 (1x1, bottleneck ``bn_size * growth``) then BN-ReLU-conv2
    (3x3, ``growth``), both convolutions the fusion operator."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int,
                 fusion: dict, num_slices: int, norm_cfg: dict,
                 memory_efficient: bool) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = build_norm_layer(norm_cfg, in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = MODELS.build(dict(fusion, in_channels=in_channels, out_channels=mid,
                                       kernel_size=1, num_slices=num_slices))
        self.norm2 = build_norm_layer(norm_cfg, mid)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = MODELS.build(dict(fusion, in_channels=mid, out_channels=growth_rate,
                                       kernel_size=3, padding=1, num_slices=num_slices))
        self.memory_efficient = memory_efficient

    def _checkpoint_contexts(self) -> tuple[ContextManager, ContextManager]:
        return contextlib.nullcontext(), _keep_norm_statistics(self.norm1)

    def bottleneck(self, *features: Tensor, thickness: Tensor | None = None) -> Tensor:
        """BN-ReLU-conv1 of the concatenated ``features``."""
        x = features[0] if len(features) == 1 else torch.cat(features, 1)
        return _call(self.conv1, self.relu1(self.norm1(x)), thickness)

    def forward(self, features: Tensor | list[Tensor], thickness: Tensor | None) -> Tensor:
        """``features``: the concatenated block input and earlier outputs
        ``(B, C, D, H, W)``, or the list of them; returns
        ``(B, growth_rate, D, H, W)``."""
        feats = list(features) if isinstance(features, (list, tuple)) else [features]
        if self.memory_efficient and self.training and any(f.requires_grad for f in feats):
            # Activation checkpointing of the (concatenation +) bottleneck: its
            # (large) output is recomputed in backward instead of stored. The
            # recompute normalises with the same batch statistics but leaves
            # the running statistics as the forward pass set them (one update
            # per step).
            x = cp.checkpoint(self.bottleneck, *feats, thickness=thickness,
                              use_reentrant=False, context_fn=self._checkpoint_contexts)
        else:
            x = self.bottleneck(*feats, thickness=thickness)
        return _call(self.conv2, self.relu2(self.norm2(x)), thickness)


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output concatenates the input and every
    layer's output: ``(B, C + num_layers * growth, D, H, W)``.

    Batch 1 (the paper's batch per GPU, and inference) writes the outputs into
    one buffer (see the module doc); larger batches concatenate, because a
    channel prefix of a batch-B buffer is not contiguous and every layer would
    copy it anyway.
    """

    def __init__(self, num_layers: int, in_channels: int, **layer_kwargs) -> None:
        super().__init__()
        self.growth_rate = layer_kwargs['growth_rate']
        for i in range(num_layers):
            self[f'denselayer{i + 1}'] = _DenseLayer(in_channels + i * self.growth_rate,
                                                     **layer_kwargs)

    def forward(self, x: Tensor, thickness: Tensor | None) -> Tensor:
        if x.shape[0] != 1:
            return self.forward_concat(x, thickness)
        b, c, *rest = x.shape
        buffer = x.new_empty(b, c + len(self) * self.growth_rate, *rest)
        # Writes go through ``.data`` (its own version counter): filling the
        # channels after a prefix does not invalidate the prefix views that
        # earlier layers saved for backward (the values they saved never change).
        writer = buffer.data
        writer[:, :c].copy_(x.detach())
        features = _GrowBuffer.apply(buffer, None, x)
        for layer in self.values():
            new = layer(features, thickness)
            writer[:, c:c + new.shape[1]].copy_(new.detach())
            c += new.shape[1]
            features = _GrowBuffer.apply(buffer, features, new)
        return features

    def forward_concat(self, x: Tensor, thickness: Tensor | None) -> Tensor:
        """The plain DenseNet block: every layer concatenates its inputs."""
        features = [x]
        for layer in self.values():
            features.append(layer(features, thickness))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (no fusion) - average pool (1, 2, 2)."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict,
                 num_slices: int) -> None:
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = NoFusionConv(in_channels, out_channels, 1, num_slices=num_slices)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
