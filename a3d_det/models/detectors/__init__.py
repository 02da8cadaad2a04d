"""Detectors: the Mask R-CNN lesion detector and its data preprocessor."""
from .lesion_data_preprocessor import LesionDataPreprocessor
from .lesion_mask_rcnn import LesionMaskRCNN

__all__ = ['LesionDataPreprocessor', 'LesionMaskRCNN']
