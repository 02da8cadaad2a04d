"""A3D, asymmetric 3D context fusion (paper Sec. 2.2, Algorithm 1)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS


def fuse_slices(x: Tensor, fusion_weight: Tensor) -> Tensor:
    """Algorithm 1, line 2: ``X[b, c, k] = sum_d P[d, k, c] * Xin[b, c, d]``,
    i.e. ``einsum('bcdhw,dkc->bckhw', x, P)`` (Eq. 1, per channel ``c``:
    ``X(c) = P(c)^T X_in(c)`` over the slice axis).

    Computed as one batched matrix product ``(C, D, D) @ (B, C, D, H*W)`` on
    the input as it lies in memory: no transposed copies of the input or the
    output, so the fusion costs one read and one write of the feature map
    forward and one per gradient backward. The small ``(C, D, D)`` matrices
    are made contiguous first: with ``P.permute`` strides the CPU batched GEMM
    falls back to a loop over channels (about 5x slower forward + backward at
    DenseNet shapes; einsum is slower too, see docs/benchmarks.md).

    Args:
        x: ``(B, C, D, H, W)``.
        fusion_weight: ``P``, ``(D, D, C)``.

    Returns:
        ``(B, C, D, H, W)``.
    """
    b, c, d, h, w = x.shape
    # (C, K=D, D): mix[c, k, d] = P[d, k, c]
    mix = fusion_weight.permute(2, 1, 0).contiguous()
    out = torch.matmul(mix, x.reshape(b, c, d, h * w))
    return out.view(b, c, d, h, w)


class _ReLUSliceFusion(torch.autograd.Function):
    """``fuse_slices(relu_(x), P)`` as one autograd node (``mix`` is ``P`` as
    the ``(C, D, D)`` matrices of :func:`fuse_slices`).

    The ReLU is applied to ``x`` in place (``x`` is returned too, as autograd
    requires of a tensor changed in place). Backward writes the mixing's input
    gradient into a new tensor and applies the ReLU's mask to that tensor in
    place, where a separate ReLU would write a second new tensor: one feature
    map fewer to allocate per layer, the same values.
    """

    @staticmethod
    def forward(ctx, x: Tensor, mix: Tensor) -> tuple[Tensor, Tensor]:
        b, c, d, h, w = x.shape
        ctx.set_materialize_grads(False)   # no zeros for the unused x output
        x.relu_()
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, mix)
        out = torch.matmul(mix, x.reshape(b, c, d, h * w))
        return out.view(b, c, d, h, w), x

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_x: Tensor | None):
        y, mix = ctx.saved_tensors
        b, c, d, h, w = y.shape
        grad_in = grad_mix = None
        if grad_out is not None:
            # under autocast the mixing ran (and its gradient comes) in half
            # precision: compute in the gradient's dtype, return the inputs' dtypes
            g = grad_out.reshape(b, c, d, h * w)
            if ctx.needs_input_grad[1]:
                # grad_mix[c, k, d] = sum_{b, p} g[b, c, k, p] y[b, c, d, p]
                y_t = y.to(g.dtype).reshape(b, c, d, h * w).transpose(2, 3)
                grad_mix = torch.matmul(g, y_t).sum(0).to(mix.dtype)
            grad_in = torch.matmul(mix.to(g.dtype).transpose(1, 2), g)
            grad_in = grad_in.view(b, c, d, h, w).to(y.dtype)
        if grad_x is not None:          # the ReLU output was also used elsewhere
            grad_in = grad_x.clone() if grad_in is None else grad_in.add_(grad_x)
        if grad_in is not None and ctx.needs_input_grad[0]:
            torch.ops.aten.threshold_backward.grad_input(grad_in, y, 0, grad_input=grad_in)
        return grad_in, grad_mix


@MODELS.register_module()
class A3DConv(BaseFusionConv):
    """Asymmetric 3D context fusion: a dense, per-channel linear fusion of the
    D slices with its own weights for every output slice (not translation
    equivariant), then the 1 x K x K convolution with the 2D kernel.

    Attributes:
        weight: 2D kernel ``(Cout, Cin, K, K)``.
        fusion_weight: ``P`` ``(D, D, Cin)``, initialised per channel to the
            identity plus U(-init_noise, init_noise) (Sec. 2.2).

    Args:
        init_noise: half-width of the uniform perturbation of the identity
            (default 0.1 as in the paper; 0 makes A3D exactly no fusion).

    ``forward(x)``: ``(B, Cin, D, H, W)`` with ``D == num_slices`` ->
    ``(B, Cout, D, H', W')``.
    """

    def __init__(self, *args, init_noise: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if init_noise < 0:
            raise ValueError(f'init_noise must be >= 0, got {init_noise}')
        self.init_noise = float(init_noise)
        d = self.num_slices
        self.fusion_weight = nn.Parameter(torch.empty(d, d, self.in_channels))
        self.reset_fusion()

    @torch.no_grad()
    def reset_fusion(self) -> None:
        """``P(c) = I + U(-init_noise, init_noise)`` for every channel c."""
        d = self.num_slices
        eye = torch.eye(d, dtype=self.fusion_weight.dtype,
                        device=self.fusion_weight.device)
        self.fusion_weight.copy_(eye.unsqueeze(-1).expand(d, d, self.in_channels))
        if self.init_noise > 0:
            self.fusion_weight.add_(torch.empty_like(self.fusion_weight)
                                    .uniform_(-self.init_noise, self.init_noise))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if x.shape[2] != self.num_slices:
            raise ValueError(f'A3DConv was built for {self.num_slices} slices '
                             f'(fusion_weight {tuple(self.fusion_weight.shape)}), '
                             f'got an input with {x.shape[2]}: {tuple(x.shape)}')
        # Algorithm 1: fuse the slices (line 2), then Conv3D with W2D
        # unsqueezed to (Cout, Cin, 1, K, K) (lines 1 and 3).
        return self.conv_slices(fuse_slices(x, self.fusion_weight))

    def forward_relu(self, x: Tensor) -> Tensor:
        """``forward(relu(x))``, the ReLU applied to ``x`` in place (the
        dense layer's BN-ReLU-conv). With autograd recording, the ReLU and the
        slice mixing are one node (:class:`_ReLUSliceFusion`): the same values
        and gradients with one feature map fewer written in backward."""
        if not torch.is_grad_enabled():
            return self(x.relu_())
        self._check_input(x)
        if x.shape[2] != self.num_slices:
            return self(x.relu_())      # forward raises the error
        mix = self.fusion_weight.permute(2, 1, 0).contiguous()
        mixed, _ = _ReLUSliceFusion.apply(x, mix)
        return self.conv_slices(mixed)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', init_noise={self.init_noise}'
