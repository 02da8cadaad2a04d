"""Backbones: ``DenseNet3D`` (truncated DenseNet-121) and ``ResNet3D``
(torchvision ResNet-18/34/50/101, converted), each with a fusion operator."""
from .densenet3d import DenseNet3D
from .norm import build_norm_layer
from .resnet3d import ResNet3D

__all__ = ['DenseNet3D', 'ResNet3D', 'build_norm_layer']
