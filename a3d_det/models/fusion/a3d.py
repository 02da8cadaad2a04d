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

    def extra_repr(self) -> str:
        return super().extra_repr() + f', init_noise={self.init_noise}'
