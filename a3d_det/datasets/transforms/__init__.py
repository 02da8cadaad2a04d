"""Transforms of the DeepLesion pipeline (registered in TRANSFORMS).

The working image is ``results['img']``: float32 (H, W, D), slices last.
"""
from .flip import RandomHorizontalFlip
from .formatting import PackLesionInputs
from .loading import (LoadLesionAnnotations, LoadMultiSliceFromArray,
                      LoadMultiSliceFromFile, MultiSliceLoading)
from .pad import PadCT
from .resize import ResizeCT
from .shift_scale_rotate import RandomShiftScaleRotate, affine_boxes
from .windowing import WindowCT

__all__ = [
    'LoadMultiSliceFromFile', 'LoadMultiSliceFromArray', 'MultiSliceLoading',
    'LoadLesionAnnotations', 'WindowCT',
    'RandomHorizontalFlip', 'RandomShiftScaleRotate', 'affine_boxes', 'ResizeCT',
    'PadCT', 'PackLesionInputs',
]
