"""AlignShift (paper Sec. 2.1 (e), [22]): a thickness-adaptive TSM."""
from typing import Optional

import torch
from torch import Tensor

from a3d_det.registry import MODELS

from .base import BaseFusionConv, shift_slices


@MODELS.register_module()
class AlignShiftConv(BaseFusionConv):
    """TSM whose shift is interpolated by the slice thickness.

    ``alpha = 1 - clamp(ref_thickness / thickness, 0, 1)`` per sample; the
    shifted channels (the TSM channels, ``fold = Cin // n_fold``) become
    ``alpha * own + (1 - alpha) * neighbour`` (the neighbour is zero beyond
    the volume). Thick slices (``thickness >> ref_thickness``) shift little;
    ``thickness <= ref_thickness`` is a full TSM shift.

    Args:
        n_fold: divisor of the channels shifted each way (default 8).
        ref_thickness: reference thickness in mm (default 2.0).

    ``forward(x, thickness)``: ``x`` ``(B, Cin, D, H, W)``, ``thickness``
    ``(B,)`` in mm (or a float for the whole batch) -> ``(B, Cout, D, H', W')``.
    """

    takes_thickness = True

    def __init__(self, *args, n_fold: int = 8, ref_thickness: float = 2.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if n_fold < 2:
            raise ValueError(f'n_fold must be >= 2, got {n_fold}')
        if ref_thickness <= 0:
            raise ValueError(f'ref_thickness must be positive, got {ref_thickness}')
        self.n_fold = n_fold
        self.ref_thickness = float(ref_thickness)

    def alpha(self, thickness: Tensor) -> Tensor:
        """``(B,)`` weight of the own slice: ``1 - clamp(ref / thickness, 0, 1)``."""
        return 1 - (self.ref_thickness / thickness).clamp(0.0, 1.0)

    def forward(self, x: Tensor, thickness: Optional[Tensor] = None) -> Tensor:
        self._check_input(x)
        if thickness is None:
            raise ValueError('AlignShiftConv.forward needs thickness, a (B,) tensor '
                             'of slice thickness in mm')
        thickness = torch.as_tensor(thickness, dtype=x.dtype, device=x.device)
        if thickness.dim() == 0:
            thickness = thickness.expand(x.shape[0])
        if thickness.shape != (x.shape[0],):
            raise ValueError(f'thickness must have shape ({x.shape[0]},), '
                             f'got {tuple(thickness.shape)}')
        if thickness.device.type != 'meta' and not bool((thickness > 0).all()):
            raise ValueError(f'thickness must be positive (mm), got {thickness.tolist()}')
        return self.conv_slices(shift_slices(x, self.n_fold, self.alpha(thickness)))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', n_fold={self.n_fold}, '
                f'ref_thickness={self.ref_thickness}')
