"""Backbones: ``DenseNet3D`` (truncated DenseNet-121 with a fusion operator)."""
from .densenet3d import DenseNet3D
from .norm import build_norm_layer

__all__ = ['DenseNet3D', 'build_norm_layer']
