"""AlignShift (paper Sec. 2.1 (e), [22]): a thickness-adaptive TSM."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from a3d_det.models.fusion.base import PAD_MODES, BaseFusionConv, shift_slices
from a3d_det.registry import MODELS


def check_thickness(values, where: str = 'thickness') -> None:
    """Raise ``ValueError`` unless every slice thickness is a finite positive
    number of mm.

    Called once per batch on host values (data sample metadata, Python
    floats), so that the operators never synchronise with the device to
    check them.

    Args:
        values: a number or a sequence of numbers (not device tensors).
        where: what the values are, for the message.
    """
    seq = values if isinstance(values, (list, tuple)) else [values]
    bad = [v for v in seq if v is None or not (math.isfinite(float(v)) and float(v) > 0)]
    if bad:
        raise ValueError(f'{where} must be finite positive numbers of mm (AlignShift '
                         f'weights its shift by it), got {list(seq)}')


@MODELS.register_module()
class AlignShiftConv(BaseFusionConv):
    """TSM whose shift is interpolated by the slice thickness.

    ``alpha = 1 - clamp(ref_thickness / thickness, 0, 1)`` per sample; the
    shifted channels (the TSM channels, ``fold = Cin // n_fold``) become
    ``alpha * own + (1 - alpha) * neighbour``. Thick slices (``thickness >>
    ref_thickness``) shift little; ``thickness <= ref_thickness`` is a full
    TSM shift.

    Args:
        n_fold: divisor of the channels shifted each way (default 8).
        ref_thickness: reference thickness in mm (default 2.0).
        pad_mode: the neighbour beyond the first/last slice: ``'zero'``
            (default; the last slice of a group becomes ``alpha * own``) or
            ``'own'`` (the slice itself, so it keeps its own value: the
            published AlignShift, ``shift_padding_zero=False``, used by the
            Table-2 configs). Both are out-of-place with exact gradients.

    ``forward(x, thickness)``: ``x`` ``(B, Cin, D, H, W)``, ``thickness``
    ``(B,)`` in mm (or a float for the whole batch) -> ``(B, Cout, D, H', W')``.
    A float is checked here; a tensor is not (that would synchronise with
    the device in every layer): the detector checks the samples' thickness
    once per batch (:func:`check_thickness`).
    """

    takes_thickness = True

    def __init__(self, *args, n_fold: int = 8, ref_thickness: float = 2.0,
                 pad_mode: str = 'zero', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if n_fold < 2:
            raise ValueError(f'n_fold must be >= 2, got {n_fold}')
        if ref_thickness <= 0:
            raise ValueError(f'ref_thickness must be positive, got {ref_thickness}')
        if pad_mode not in PAD_MODES:
            raise ValueError(f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
        self.n_fold = n_fold
        self.ref_thickness = float(ref_thickness)
        self.pad_mode = pad_mode

    def alpha(self, thickness: Tensor) -> Tensor:
        """``(B,)`` weight of the own slice: ``1 - clamp(ref / thickness, 0, 1)``."""
        return 1 - (self.ref_thickness / thickness).clamp(0.0, 1.0)

    def forward(self, x: Tensor, thickness: Tensor | float | None = None) -> Tensor:
        self._check_input(x)
        if thickness is None:
            raise ValueError('AlignShiftConv.forward needs thickness, a (B,) tensor '
                             'of slice thickness in mm')
        if not isinstance(thickness, Tensor):
            check_thickness(thickness)
        thickness = torch.as_tensor(thickness, dtype=x.dtype, device=x.device)
        if thickness.dim() == 0:
            thickness = thickness.expand(x.shape[0])
        if thickness.shape != (x.shape[0],):
            raise ValueError(f'thickness must have shape ({x.shape[0]},), '
                             f'got {tuple(thickness.shape)}')
        return self.conv_slices(shift_slices(x, self.n_fold, self.alpha(thickness),
                                             self.pad_mode))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', n_fold={self.n_fold}, '
                f'ref_thickness={self.ref_thickness}, pad_mode={self.pad_mode!r}')
