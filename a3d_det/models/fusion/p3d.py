"""P3D (paper Sec. 2.1 (c)): 1 x K x K convolution, then K x 1 x 1 convolution."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3d_det.registry import MODELS

from .base import BaseFusionConv


@MODELS.register_module()
class P3DConv(BaseFusionConv):
    """Pseudo-3D convolution: the in-plane 1 x K x K convolution with the 2D
    kernel ``weight`` ``(Cout, Cin, K, K)`` followed by a depth convolution
    ``temporal_weight`` ``(Cout, Cout, K, 1, 1)`` (depth padding ``K // 2``,
    no bias, K must be odd).

    The depth kernel is initialised to ``[0, ..., 1, ..., 0]`` (the identity
    on the centre tap), so before training P3D equals no fusion on any input.

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.kernel_size % 2 == 0:
            raise ValueError('P3DConv needs an odd kernel_size to keep the number '
                             f'of slices, got {self.kernel_size}')
        k, c = self.kernel_size, self.out_channels
        self.temporal_weight = nn.Parameter(torch.empty(c, c, k, 1, 1))
        self.reset_temporal()

    @torch.no_grad()
    def reset_temporal(self) -> None:
        """Depth kernel ``[0, ..., 1, ..., 0]``: identity on the centre tap."""
        self.temporal_weight.zero_()
        idx = torch.arange(self.out_channels)
        self.temporal_weight[idx, idx, self.kernel_size // 2] = 1.0

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        y = self.conv_slices(x)
        return F.conv3d(y, self.temporal_weight, None, 1,
                        (self.kernel_size // 2, 0, 0))
