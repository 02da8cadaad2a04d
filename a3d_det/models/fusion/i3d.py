"""I3D (paper Sec. 2.1 (b)): a full K x K x K convolution inflated from 2D."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS


@MODELS.register_module()
class I3DConv(BaseFusionConv):
    """3D convolution with kernel ``(Cout, Cin, K, K, K)``, depth stride 1 and
    depth padding ``K // 2`` (D is kept, K must be odd).

    ``from_conv2d`` inflates the 2D kernel into K copies of ``W2D / K`` along
    depth, so features keep their expectation: on an input constant along
    depth the inner slices (those whose K taps all lie inside the volume)
    equal the 2D convolution.

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    depth_kernel = True

    def _weight_shape(self) -> tuple[int, ...]:
        k = self.kernel_size
        return (self.out_channels, self.in_channels, k, k, k)

    def _convert_2d_kernel(self, weight: Tensor) -> None:
        # Sec. 2.1 (b): K repeats of W2D / K along depth.
        k = self.kernel_size
        self.weight.copy_(weight.unsqueeze(2).expand(-1, -1, k, -1, -1) / k)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv3d(x, self.weight, self.bias, (1, *self.stride),
                        (self.kernel_size // 2, *self.padding))
