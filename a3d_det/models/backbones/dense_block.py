"""The dense block of DenseNet3D (paper Sec. 2.3, Fig. 2): dense layers whose
two convolutions are the 3D context fusion operator, each reading the
concatenation of the block input and every earlier layer's output.

The concatenation is not re-made by every layer (torchvision's DenseNet does
that, copying ``sum_l C_l`` channels per block, quadratic in the number of
layers): a batch-1 block writes each layer's output once into a buffer that
holds the whole block output, and every layer reads its input as a channel
prefix of that buffer, a view (:class:`_GrowBuffer`). The values and
gradients are those of the concatenation; the inputs that batch norm saves for
backward are views of the one buffer instead of ``L`` separate
concatenations, so training needs less memory too, and backward adds each
layer's input gradient in place into one gradient of the block output instead
of writing a new sum per layer. (With
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
from a3d_det.models.scratch import scratch
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


def _inference_affine(norm: nn.Module, x: Tensor) -> tuple[Tensor, Tensor] | None:
    """``norm`` as per-channel ``(scale, shift)`` at CPU inference (no
    autograd, eval mode, batch norm with running statistics), else ``None``."""
    if (torch.is_grad_enabled() or norm.training or x.device.type != 'cpu'
            or not isinstance(norm, nn.modules.batchnorm._BatchNorm)
            or norm.running_var is None):
        return None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    shift = -norm.running_mean * scale
    if norm.affine:
        scale = scale * norm.weight
        shift = shift * norm.weight + norm.bias
    return scale, shift


def _norm_relu_conv(norm: nn.Module, relu: nn.Module, conv: nn.Module, x: Tensor,
                    thickness: Tensor | None, slot: str | None) -> Tensor:
    """``conv(relu(norm(x)))``. At CPU inference (:func:`_inference_affine`)
    the batch norm is a scale and shift, applied by the operator itself where
    it can (``forward_norm_relu``: A3D's kernel reads ``x`` directly), else
    written into the scratch buffer ``slot`` (``None``: into ``x``, a
    temporary of the caller's), so that no new feature map is written (see
    :mod:`a3d_det.models.scratch`). The norm's and ReLU's forward hooks do not
    run then."""
    affine = _inference_affine(norm, x)
    if affine is None:
        return _call(conv, relu, norm(x), thickness)
    fold = getattr(conv, 'forward_norm_relu', None)
    out = fold(x, *affine) if fold is not None else None
    if out is not None:
        return out
    scale, shift = (t.view((-1,) + (1,) * (x.dim() - 2)) for t in affine)
    normed = x if slot is None else scratch(slot, x.numel(), x).view(x.shape)
    return _call(conv, relu, torch.addcmul(shift, x, scale, out=normed), thickness)


def _call(op: nn.Module, relu: nn.Module, x: Tensor, thickness: Tensor | None) -> Tensor:
    """``op(relu(x))``, passing ``thickness`` only to the operators that take
    it. While autograd records, an operator with ``forward_relu`` (A3D) runs
    the ReLU itself, fused into its first step."""
    fused = getattr(op, 'forward_relu', None)
    if fused is not None and torch.is_grad_enabled():
        return fused(x)
    x = relu(x)
    if getattr(op, 'takes_thickness', False):
        return op(x, thickness)
    return op(x)


class _BlockGradient:
    """The gradient of one dense block's output, shared by its
    :class:`_GrowBuffer` nodes in backward (one per forward call)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.grad: Tensor | None = None


class _GrowBuffer(torch.autograd.Function):
    """``buffer[:, :c + g]`` as the concatenation ``cat([prefix, new], 1)``.

    The caller has already written ``prefix`` (``c`` channels, ``None`` when
    ``c = 0``) and ``new`` (``g`` channels) into ``buffer``. Two outputs, both
    views of it: the features the next node grows (``chain``) and the same
    features for the next dense layer to read (``read``).

    Backward accumulates in place into one gradient of the whole block output
    (``state.grad``, started from the block output's gradient by the top node):
    ``grad[:, :c + g] += grad(read)``; the gradients it returns, of ``prefix``
    and ``new``, are channel views of that accumulator. This is the gradient of
    ``torch.cat`` and of the reads, without a new tensor for every layer's sum
    (autograd would add the reading layer's gradient to the chain's gradient
    out of place, one allocation of the whole prefix per layer). The views are
    final when returned: later (lower) nodes only add to channels below ``c``.
    """

    @staticmethod
    def forward(ctx, state: _BlockGradient, buffer: Tensor, prefix: Tensor | None,
                new: Tensor) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.state = state
        ctx.split = 0 if prefix is None else prefix.shape[1]
        ctx.size = ctx.split + new.shape[1]
        return buffer[:, :ctx.size], buffer[:, :ctx.size]

    @staticmethod
    def backward(ctx, grad_chain: Tensor | None, grad_read: Tensor | None):
        state, s, n = ctx.state, ctx.split, ctx.size
        if n == state.channels:          # the block output: start the accumulator
            state.grad = None
        acc = state.grad
        if acc is None:
            acc = state.grad = (grad_chain.clone(memory_format=torch.contiguous_format)
                                if grad_chain is not None else
                                grad_read.new_zeros(grad_read.shape[0], state.channels,
                                                    *grad_read.shape[2:]))
        elif grad_chain is not None and not (grad_chain.data_ptr() == acc.data_ptr()
                                             and grad_chain.stride() == acc.stride()):
            # the chain was also used outside the block: autograd summed the
            # view handed out with that use into a new tensor, which replaces it
            acc[:, :n].copy_(grad_chain)
        if grad_read is not None:
            acc[:, :n] += grad_read
        if s == 0:
            state.grad = None            # the bottom: the block is done
        return None, None, (acc[:, :s] if s else None), acc[:, s:n]


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
        # the normalised input lives for this call only: at inference, a scratch buffer
        return _norm_relu_conv(self.norm1, self.relu1, self.conv1, x, thickness, 'dense_norm')

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
        # conv1's output is this call's own: at inference, normalised in place
        return _norm_relu_conv(self.norm2, self.relu2, self.conv2, x, thickness, None)


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
        channels = c + len(self) * self.growth_rate
        buffer = x.new_empty(b, channels, *rest)
        state = _BlockGradient(channels)
        # Writes go through ``.data`` (its own version counter): filling the
        # channels after a prefix does not invalidate the prefix views that
        # earlier layers saved for backward (the values they saved never change).
        writer = buffer.data
        writer[:, :c].copy_(x.detach())
        chain, read = _GrowBuffer.apply(state, buffer, None, x)
        for layer in self.values():
            new = layer(read, thickness)
            writer[:, c:c + new.shape[1]].copy_(new.detach())
            c += new.shape[1]
            chain, read = _GrowBuffer.apply(state, buffer, chain, new)
        return chain

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
