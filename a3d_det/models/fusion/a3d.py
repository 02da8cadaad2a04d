"""A3D, asymmetric 3D context fusion (paper Sec. 2.2, Algorithm 1)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from a3d_det.models.fusion import a3d_cpu
from a3d_det.models.fusion.base import BaseFusionConv, SliceConv
from a3d_det.models.scratch import scratch
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


#: bytes of the slice-fusion backward's temporary: a few channels' worth,
#: so that each chunk of the gradient is read and rewritten while in cache.
_CHUNK_BYTES = 1 << 20


def _fusion_backward_in_place(g: Tensor, y: Tensor, mix: Tensor, mask: bool,
                              need_mix: bool = True,
                              chunk_bytes: int = _CHUNK_BYTES) -> Tensor | None:
    """The slice fusion's backward, overwriting its output gradient ``g``.

    With ``g``, ``y`` of shape ``(B, C, D, N)`` and ``mix`` ``(C, D, D)``:
    returns ``grad_mix[c] = sum_b g[b, c] @ y[b, c]^T`` (``None`` unless
    ``need_mix``) and turns ``g`` into the
    input gradient ``mix[c]^T @ g[b, c]`` (times the ReLU mask ``y > 0`` if
    ``mask``), channel chunk by channel chunk through one small temporary: no
    feature map is allocated, and each chunk of ``g`` is read from memory once.
    """
    b, c, d, n = g.shape
    step = max(1, chunk_bytes // (d * n * g.element_size()))
    mix_t = mix.transpose(1, 2)
    grad_mix = g.new_zeros(c, d, d) if need_mix else None
    tmp = g.new_empty(min(step, c), d, n)
    for i in range(b):
        for s in range(0, c, step):
            e = min(s + step, c)
            g_c, y_c, t = g[i, s:e], y[i, s:e], tmp[:e - s]
            if grad_mix is not None:
                grad_mix[s:e].baddbmm_(g_c, y_c.transpose(1, 2))
            torch.bmm(mix_t[s:e], g_c, out=t)
            if mask:
                torch.ops.aten.threshold_backward.grad_input(t, y_c, 0, grad_input=g_c)
            else:
                g_c.copy_(t)
    return grad_mix


class _ReLUSliceFusion(torch.autograd.Function):
    """``fuse_slices(relu_(x), P)`` as one autograd node (``mix`` is ``P`` as
    the ``(C, D, D)`` matrices of :func:`fuse_slices`).

    The ReLU is applied to ``x`` in place (``x`` is returned too, as autograd
    requires of a tensor changed in place). Backward computes the input
    gradient and the ReLU mask in the memory of the output gradient when
    ``overwrite_grad`` says that gradient is this node's to overwrite (the
    output feeds exactly one operation, whose backward writes a new
    gradient: :meth:`A3DConv.forward_relu`), else in a copy of it. Where the
    separate ReLU and matrix product wrote two new feature maps per layer in
    backward, this writes none; the values are the same.
    """

    @staticmethod
    def forward(ctx, x: Tensor, mix: Tensor, overwrite_grad: bool) -> tuple[Tensor, Tensor]:
        b, c, d, h, w = x.shape
        ctx.set_materialize_grads(False)   # no zeros for the unused x output
        ctx.overwrite_grad = overwrite_grad
        x.relu_()
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, mix)
        out = torch.matmul(mix, x.reshape(b, c, d, h * w))
        return out.view(b, c, d, h, w), x

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_x: Tensor | None):
        y, mix = ctx.saved_tensors
        b, c, d, h, w = y.shape
        if grad_out is None:            # only the ReLU output was used elsewhere
            if grad_x is None:
                return None, None, None
            grad_in = grad_x.clone()
            torch.ops.aten.threshold_backward.grad_input(grad_in, y, 0, grad_input=grad_in)
            return grad_in, None, None
        g = grad_out.reshape(b, c, d, h * w)    # any layout: chunks are views
        if not ctx.overwrite_grad:
            g = g.clone()
        # under autocast the mixing ran (and its gradient comes) in half
        # precision: compute in the gradient's dtype, return the inputs' dtypes
        y4 = y.reshape(b, c, d, h * w).to(g.dtype)
        grad_mix = _fusion_backward_in_place(g, y4, mix.to(g.dtype), mask=grad_x is None,
                                             need_mix=ctx.needs_input_grad[1])
        grad_in = g.view(b, c, d, h, w).to(y.dtype)
        if grad_x is not None:          # the ReLU output was also used elsewhere
            grad_in.add_(grad_x)
            torch.ops.aten.threshold_backward.grad_input(grad_in, y, 0, grad_input=grad_in)
        return grad_in, (None if grad_mix is None else grad_mix.to(mix.dtype)), None


class _FusedA3DConv(torch.autograd.Function):
    """``op.conv_slices(fuse_slices(x, P))`` (with ``relu``: of ``relu_(x)``)
    on CPU float32 through the compiled kernel (:mod:`.a3d_cpu`): the fused
    map is written into a scratch buffer, laid out as the convolution reads
    it, and recomputed there in backward instead of being kept, so A3D keeps
    no more feature maps for backward than no fusion and writes no new one
    for its fusion (each new feature map costs page faults on first write,
    which here take longer than the fusion). Backward runs the convolution's
    backward (``aten.convolution_backward``) and then the fusion's, in place
    in the convolution's input gradient.

    With ``relu`` the ReLU is applied to ``x`` in place and ``x`` is returned
    too (``(out, x)``, as autograd requires of a tensor changed in place).
    """

    @staticmethod
    def fuse(op: 'A3DConv', x: Tensor, mix: Tensor, weight: Tensor, relu: bool,
             **kernel_options) -> SliceConv:
        """The kernel's fused map of ``x`` (:func:`.a3d_cpu.forward`, with
        ``kernel_options``) in the scratch buffer, laid out as
        ``op.conv_slices`` reads it (the 2D convolution of the slices reads
        ``(B * D, C, H, W)``: there it is slices first, no copy); returns the
        convolution of it."""
        b, c, d, h, w = x.shape
        buf = scratch('a3d_fused', x.numel(), x)
        if op.slice_conv_kind(x.shape, x.device, weight.dim()) == 'slices2d':
            fused = buf.view(b, d, c, h, w).transpose(1, 2)
        else:
            fused = buf.view(b, c, d, h, w)
        a3d_cpu.forward(x, mix, fused, relu, **kernel_options)
        return op.slice_conv(fused, weight)

    @staticmethod
    def forward(ctx, x: Tensor, mix: Tensor, weight: Tensor, bias: Tensor | None,
                op: 'A3DConv', relu: bool) -> Tensor | tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)   # no zeros for the unused x output
        ctx.op, ctx.relu, ctx.has_bias = op, relu, bias is not None
        out = _FusedA3DConv.fuse(op, x, mix, weight, relu).forward(bias)
        ctx.save_for_backward(x, mix, weight)
        if not relu:
            return out
        ctx.mark_dirty(x)
        return out, x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor | None, grad_x: Tensor | None = None):
        y, mix, weight = ctx.saved_tensors
        need_x, need_mix, need_w, need_b = ctx.needs_input_grad[:4]
        grad_in = grad_mix = grad_w = grad_b = None
        if grad_out is not None:
            plan = _FusedA3DConv.fuse(ctx.op, y, mix, weight, False)   # y: ReLU applied
            need_fused = need_x or need_mix
            fused_grad, grad_w, grad_b = plan.backward(grad_out, ctx.has_bias,
                                                       (need_fused, need_w, need_b))
            if grad_w is not None:
                grad_w = grad_w.view_as(weight)
            if need_fused:
                if a3d_cpu.pixel_strides(fused_grad) is None:
                    fused_grad = fused_grad.contiguous()
                grad_mix = torch.zeros_like(mix) if need_mix else None
                # the convolution's input gradient is new: the fusion's is written over it
                a3d_cpu.backward(fused_grad, y, mix, grad_mix, fused_grad,
                                 mask=ctx.relu and grad_x is None)
                grad_in = fused_grad
        if grad_x is not None:          # the ReLU output was also used elsewhere
            grad_in = grad_x.clone() if grad_in is None else grad_in.add_(grad_x)
            torch.ops.aten.threshold_backward.grad_input(grad_in, y, 0, grad_input=grad_in)
        return grad_in, grad_mix, grad_w, grad_b, None, None


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

    def _check_slices(self, x: Tensor) -> None:
        self._check_input(x)
        if x.shape[2] != self.num_slices:
            raise ValueError(f'A3DConv was built for {self.num_slices} slices '
                             f'(fusion_weight {tuple(self.fusion_weight.shape)}), '
                             f'got an input with {x.shape[2]}: {tuple(x.shape)}')

    def _mix(self) -> Tensor:
        """``P`` as the ``(C, D, D)`` matrices of :func:`fuse_slices`."""
        return self.fusion_weight.permute(2, 1, 0).contiguous()

    def _fused(self, x: Tensor, relu: bool) -> Tensor | None:
        """The kernel path (:class:`_FusedA3DConv`) where it applies, else ``None``."""
        mix = self._mix()
        if not a3d_cpu.applies(x, mix=mix):
            return None
        out = _FusedA3DConv.apply(x, mix, self.weight, self.bias, self, relu)
        return out[0] if relu else out

    def forward(self, x: Tensor) -> Tensor:
        self._check_slices(x)
        out = self._fused(x, relu=False)
        if out is not None:
            return out
        # Algorithm 1: fuse the slices (line 2), then Conv3D with W2D
        # unsqueezed to (Cout, Cin, 1, K, K) (lines 1 and 3).
        return self.conv_slices(fuse_slices(x, self.fusion_weight))

    def forward_relu(self, x: Tensor) -> Tensor:
        """``forward(relu(x))``, the ReLU applied to ``x`` in place (the
        dense layer's BN-ReLU-conv). On CPU float32 the ReLU, slice fusion
        and convolution are one node (:class:`_FusedA3DConv`); elsewhere,
        with autograd recording, the ReLU and the slice fusion are one node
        (:class:`_ReLUSliceFusion`). The same values and gradients, and the
        backward writes no new feature map for the ReLU or the fusion."""
        self._check_slices(x)
        out = self._fused(x, relu=True)
        if out is not None:
            return out
        if not torch.is_grad_enabled():
            return self(x.relu_())
        mixed, _ = _ReLUSliceFusion.apply(x, self._mix(), True)   # feeds conv_slices only
        return self.conv_slices(mixed)

    def forward_norm_relu(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor | None:
        """``forward(relu(x * scale + shift))`` with per-channel ``scale`` and
        ``shift`` ``(Cin,)`` (a batch norm in eval mode), without autograd,
        where the CPU kernel applies (``x`` is read once and not changed);
        ``None`` elsewhere (the caller then normalises)."""
        self._check_slices(x)
        mix = self._mix()
        if torch.is_grad_enabled() or not a3d_cpu.applies(x, mix=mix):
            return None
        return _FusedA3DConv.fuse(self, x, mix, self.weight, relu=True, in_place=False,
                                  scale=scale, shift=shift).forward(self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', init_noise={self.init_noise}'
