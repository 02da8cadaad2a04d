"""Backbones: ``DenseNet3D`` (truncated DenseNet-121 with a fusion operator)."""
from __future__ import annotations

from a3d_det.models.backbones.densenet3d import DenseNet3D
from a3d_det.models.backbones.norm import build_norm_layer

__all__ = ['DenseNet3D', 'build_norm_layer']
