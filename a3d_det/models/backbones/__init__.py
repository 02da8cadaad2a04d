"""Backbones: ``DenseNet3D`` (truncated DenseNet-121) and ``ResNet3D``
(torchvision ResNet-18/34/50/101, converted), each with a fusion operator."""
from __future__ import annotations

from a3d_det.models.backbones.densenet3d import DenseNet3D
from a3d_det.models.backbones.norm import build_norm_layer
from a3d_det.models.backbones.resnet3d import ResNet3D

__all__ = ['DenseNet3D', 'ResNet3D', 'build_norm_layer']
