"""The seven 3D context fusion operators (paper Sec. 2.1-2.2), registered in
``MODELS`` under their class names. Each converts a 2D convolution with
``Op.from_conv2d(conv2d, num_slices=D, **options)``; ``convert_2d_to_3d``
converts a whole 2D network."""
from __future__ import annotations

from a3d_det.models.fusion.a3d import A3DConv, fuse_slices
from a3d_det.models.fusion.acs import ACSConv, acs_split
from a3d_det.models.fusion.align_shift import AlignShiftConv
from a3d_det.models.fusion.base import BaseFusionConv, shift_slices
from a3d_det.models.fusion.convert import Converted3D, SliceWise, convert_2d_to_3d, slice_thickness
from a3d_det.models.fusion.i3d import I3DConv
from a3d_det.models.fusion.no_fusion import NoFusionConv
from a3d_det.models.fusion.p3d import P3DConv
from a3d_det.models.fusion.tsm import TSMConv

__all__ = ['BaseFusionConv', 'NoFusionConv', 'I3DConv', 'P3DConv', 'ACSConv',
           'TSMConv', 'AlignShiftConv', 'A3DConv', 'acs_split', 'shift_slices',
           'fuse_slices', 'convert_2d_to_3d', 'Converted3D', 'SliceWise',
           'slice_thickness']
