"""P3D (paper Sec. 2.1 (c)): 1 x K x K convolution, then a depth convolution."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS


@MODELS.register_module()
class P3DConv(BaseFusionConv):
    """Pseudo-3D convolution: the in-plane 1 x K x K convolution with the 2D
    kernel ``weight`` ``(Cout, Cin, K, K)`` followed by a depth convolution
    ``temporal_weight`` ``(Cout, Cout, Kd, 1, 1)`` (depth padding ``Kd // 2``,
    no bias).

    The depth kernel is initialised to ``[0, ..., 1, ..., 0]`` (the identity
    on the centre tap), so before training P3D equals no fusion on any input.

    Args:
        depth_kernel_size: ``Kd`` (odd). ``None`` (default): ``K``, except that
            a 1 x 1 convolution gets ``Kd = 3``: a 1 x 1 x 1 depth convolution
            would fuse no slices, and Table 1's P3D figures (67.79 / 158.18
            GFLOPs) count a depth kernel of 3 in the DenseNet bottleneck 1 x 1
            convolutions too (with 1 they would be 50.68 / 118.26).

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    def __init__(self, *args, depth_kernel_size: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if depth_kernel_size is None:
            depth_kernel_size = self.kernel_size if self.kernel_size > 1 else 3
        if depth_kernel_size <= 0 or depth_kernel_size % 2 == 0:
            raise ValueError('P3DConv needs an odd depth kernel to keep the number of '
                             f'slices, got {depth_kernel_size}')
        self.depth_kernel_size = depth_kernel_size
        c = self.out_channels
        self.temporal_weight = nn.Parameter(torch.empty(c, c, depth_kernel_size, 1, 1))
        self.reset_temporal()

    @torch.no_grad()
    def reset_temporal(self) -> None:
        """Depth kernel ``[0, ..., 1, ..., 0]``: identity on the centre tap."""
        self.temporal_weight.zero_()
        idx = torch.arange(self.out_channels, device=self.temporal_weight.device)
        self.temporal_weight[idx, idx, self.depth_kernel_size // 2] = 1.0

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        y = self.conv_slices(x)
        b, c, d, h, w = y.shape
        # The Kd x 1 x 1 depth convolution as a (Kd, 1) 2D convolution over
        # (D, H*W): the same arithmetic, but the CPU backend has a fast 2D
        # kernel and only a slow (vol2col) 3D one for this shape.
        out = F.conv2d(y.reshape(b, c, d, h * w), self.temporal_weight.squeeze(-1),
                       None, 1, (self.depth_kernel_size // 2, 0))
        return out.view(b, c, d, h, w)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', depth_kernel_size={self.depth_kernel_size}'
