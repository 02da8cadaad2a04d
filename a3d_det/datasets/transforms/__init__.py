"""Transforms of the DeepLesion pipeline (registered in TRANSFORMS).

The working image is ``results['img']``: float32 (H, W, D), slices last.
"""
from __future__ import annotations

from a3d_det.datasets.transforms.flip import RandomHorizontalFlip
from a3d_det.datasets.transforms.formatting import PackLesionInputs
from a3d_det.datasets.transforms.loading import (LoadLesionAnnotations, LoadMultiSliceFromArray,
                                                 LoadMultiSliceFromFile, MultiSliceLoading)
from a3d_det.datasets.transforms.pad import PadCT
from a3d_det.datasets.transforms.resize import ResizeCT
from a3d_det.datasets.transforms.shift_scale_rotate import RandomShiftScaleRotate, affine_boxes
from a3d_det.datasets.transforms.windowing import WindowCT

__all__ = [
    'LoadMultiSliceFromFile', 'LoadMultiSliceFromArray', 'MultiSliceLoading',
    'LoadLesionAnnotations', 'WindowCT',
    'RandomHorizontalFlip', 'RandomShiftScaleRotate', 'affine_boxes', 'ResizeCT',
    'PadCT', 'PackLesionInputs',
]
