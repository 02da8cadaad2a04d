"""No fusion (paper Sec. 2.1 (a)): a 2D convolution on every slice."""
from __future__ import annotations

from torch import Tensor

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS


@MODELS.register_module()
class NoFusionConv(BaseFusionConv):
    """2D convolution of each slice, i.e. a 3D convolution with the kernel
    ``W2D`` unsqueezed to ``(Cout, Cin, 1, K, K)``; slices never mix.

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.conv_slices(x)
