"""Necks: 3D backbone maps -> the 2D map of the detection heads."""
from __future__ import annotations

from a3d_det.models.necks.fpn_3d_to_2d import FPN3Dto2D

__all__ = ['FPN3Dto2D']
