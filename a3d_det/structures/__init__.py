from __future__ import annotations

from a3d_det.structures.lesion_data_sample import LesionDataSample

__all__ = ['LesionDataSample']
