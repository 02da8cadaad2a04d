"""3D-to-2D feature pyramid of the A3D detector (paper Sec. 2.3, Fig. 2)."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from a3d_det.registry import MODELS


@MODELS.register_module()
class FPN3Dto2D(nn.Module):
    """Squeeze each 3D level to 2D, then fuse the levels top-down (FPN).

    For every backbone level ``i`` (paper Sec. 2.3: "spatial and channel-wise
    unification by upsampling and D x 1 x 1 convolution ... squeezed to 2D by
    a D x 1 x 1 convolution"; per level as in the official configuration):

    1. a ``D x 1 x 1`` 3D convolution collapses the depth: (B, C_i, D, h, w)
       -> (B, C_i, h, w);
    2. a 1 x 1 lateral convolution maps C_i -> ``out_channels``;
    3. top-down: the coarser map is upsampled (nearest) and added.

    The output is the single stride-``strides[0]`` 2D map the heads use.

    ``in_channels``, ``strides`` and ``num_slices`` come from the backbone
    (the detector passes them); configs give only ``out_channels``.

    Args:
        in_channels: channels of the backbone levels, e.g. (256, 512, 1024).
        strides: strides of the backbone levels, e.g. (4, 8, 16).
        num_slices: depth D of the backbone maps.
        out_channels: channels of the output map (512 in the paper).
    """

    def __init__(self, in_channels: Sequence[int], strides: Sequence[int],
                 num_slices: int, out_channels: int = 512) -> None:
        super().__init__()
        if len(in_channels) != len(strides) or len(in_channels) == 0:
            raise ValueError('FPN3Dto2D: in_channels and strides must be '
                             f'non-empty and of equal length, got {in_channels} '
                             f'and {strides}')
        if num_slices < 1:
            raise ValueError(f'FPN3Dto2D: num_slices must be >= 1, got {num_slices}')
        self.in_channels = tuple(in_channels)
        self.strides = tuple(strides)
        self.num_slices = num_slices
        self.out_channels = out_channels
        self.stride = self.strides[0]
        self.depth_convs = nn.ModuleList(
            nn.Conv3d(c, c, kernel_size=(num_slices, 1, 1)) for c in in_channels)
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, kernel_size=1) for c in in_channels)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """
        Args:
            feats: backbone maps, level ``i`` of shape (B, C_i, D, H/s_i, W/s_i).

        Returns:
            (B, out_channels, H/s_0, W/s_0) 2D feature map.
        """
        if len(feats) != len(self.depth_convs):
            raise ValueError(f'FPN3Dto2D: expected {len(self.depth_convs)} '
                             f'levels, got {len(feats)}')
        for x in feats:
            if x.dim() != 5 or x.shape[2] != self.num_slices:
                raise ValueError('FPN3Dto2D: expected (B, C, D, h, w) maps with '
                                 f'D = {self.num_slices}, got {tuple(x.shape)}')
        # 1-2. per level: D x 1 x 1 depth squeeze, then 1 x 1 lateral.
        laterals = [lat(dconv(x).squeeze(2)) for x, dconv, lat
                    in zip(feats, self.depth_convs, self.lateral_convs)]
        # 3. top-down: nearest upsampling and addition, coarse to fine.
        out = laterals[-1]
        for lateral in reversed(laterals[:-1]):
            out = lateral + F.interpolate(out, size=lateral.shape[-2:], mode='nearest')
        return out
