"""Detectors: the Mask R-CNN lesion detector and its data preprocessor."""
from __future__ import annotations

from a3d_det.models.detectors.lesion_data_preprocessor import LesionDataPreprocessor
from a3d_det.models.detectors.lesion_mask_rcnn import LesionMaskRCNN

__all__ = ['LesionDataPreprocessor', 'LesionMaskRCNN']
