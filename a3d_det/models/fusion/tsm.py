"""TSM (paper Sec. 2.1 (e)): shift channels to adjacent slices, then 2D conv."""
from __future__ import annotations

from torch import Tensor

from a3d_det.models.fusion.base import BaseFusionConv, shift_slices
from a3d_det.registry import MODELS


@MODELS.register_module()
class TSMConv(BaseFusionConv):
    """Temporal shift module before a 1 x K x K convolution.

    With ``fold = Cin // n_fold``: input channels ``[0, fold)`` take the next
    slice's value (zero after the last slice), ``[fold, 2 * fold)`` the
    previous slice's (zero before the first), the rest stay; then the 2D
    kernel ``weight`` ``(Cout, Cin, K, K)`` convolves each slice.

    Args:
        n_fold: divisor of the channels shifted each way (default 8).

    ``forward(x)``: ``(B, Cin, D, H, W)`` -> ``(B, Cout, D, H', W')``.
    """

    def __init__(self, *args, n_fold: int = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if n_fold < 2:
            raise ValueError(f'n_fold must be >= 2, got {n_fold}')
        self.n_fold = n_fold

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.conv_slices(shift_slices(x, self.n_fold))

    def extra_repr(self) -> str:
        return super().extra_repr() + f', n_fold={self.n_fold}'
