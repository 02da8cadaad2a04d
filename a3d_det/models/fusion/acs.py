"""ACS (paper Sec. 2.1 (d)): axial, coronal and sagittal views of one 2D kernel."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from a3d_det.models.fusion.base import BaseFusionConv
from a3d_det.registry import MODELS


def acs_split(out_channels: int) -> list[int]:
    """Output channels of the axial, coronal and sagittal views: ``Cout``
    split in three, the first ``Cout mod 3`` groups one channel larger."""
    base, extra = divmod(out_channels, 3)
    return [base + (1 if i < extra else 0) for i in range(3)]


@MODELS.register_module()
class ACSConv(BaseFusionConv):
    """Axial-coronal-sagittal convolution.

    The 2D kernel ``weight`` ``(Cout, Cin, K, K)`` is split along its output
    channels into ``acs_split(Cout)``; the three parts become the kernels
    ``(Ca, Cin, 1, K, K)`` (axial), ``(Cc, Cin, K, 1, K)`` (coronal) and
    ``(Cs, Cin, K, K, 1)`` (sagittal), i.e. the 2D kernel's rows run along
    depth in the coronal view and its columns in the sagittal view. Depth
    padding is ``K // 2`` (K must be odd); the in-plane output size is the 2D
    convolution's, so the three outputs concatenate into ``Cout`` channels.
    The axial part is no fusion; the arithmetic equals no fusion's.

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    depth_kernel = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.split = acs_split(self.out_channels)

    def view_kernels(self) -> tuple[Tensor, Tensor, Tensor]:
        """The axial ``(Ca, Cin, 1, K, K)``, coronal ``(Cc, Cin, K, 1, K)`` and
        sagittal ``(Cs, Cin, K, K, 1)`` kernels carved from ``weight``."""
        wa, wc, ws = torch.split(self.weight, self.split, dim=0)
        return wa.unsqueeze(2), wc.unsqueeze(3), ws.unsqueeze(4)

    @staticmethod
    def _conv_view(x: Tensor, weight: Tensor, bias, stride: tuple[int, int],
                   padding: tuple[int, int, int]) -> Tensor:
        # A negative padding (a view whose kernel is 1 where the 2D kernel was
        # K) is a crop, so that every view has the 2D output size.
        crop = [max(-p, 0) for p in padding]
        if any(crop):
            d, h, w = x.shape[2:]
            x = x[:, :, crop[0]:d - crop[0], crop[1]:h - crop[1],
                  crop[2]:w - crop[2]]
        pad = tuple(max(p, 0) for p in padding)
        return F.conv3d(x, weight, bias, (1, *stride), pad)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.kernel_size == 1:
            # the three views of a 1 x 1 kernel are the same 1 x 1 x 1 kernel:
            # one convolution instead of three passes over the input
            return self.conv_slices(x)
        half = self.kernel_size // 2
        ph, pw = self.padding
        wa, wc, ws = self.view_kernels()
        ba = bc = bs = None
        if self.bias is not None:
            ba, bc, bs = torch.split(self.bias, self.split)
        outs = []
        for w, b, pad in ((wa, ba, (0, ph, pw)),
                          (wc, bc, (half, ph - half, pw)),
                          (ws, bs, (half, ph, pw - half))):
            if w.shape[0] > 0:
                outs.append(self._conv_view(x, w, b, self.stride, pad))
        return torch.cat(outs, dim=1)
