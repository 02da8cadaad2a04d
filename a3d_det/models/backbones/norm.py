"""Normalisation layers for 3D feature maps, built from a config dict.

mmengine registers no normalisation layers (that was mmcv), so the few the
backbone needs are mapped here: ``BN3d`` (one process), ``SyncBN`` (the
paper's multi-GPU setting) and ``GN``.
"""
from __future__ import annotations

from torch import nn

NORM_LAYERS: dict[str, type] = {
    'BN3d': nn.BatchNorm3d,
    'SyncBN': nn.SyncBatchNorm,
    'GN': nn.GroupNorm,
}


def build_norm_layer(cfg: dict, num_features: int) -> nn.Module:
    """Build ``cfg['type']`` for ``num_features`` channels of a
    ``(B, C, D, H, W)`` map; other keys go to the layer (``eps``,
    ``momentum``; ``num_groups`` for GN; ``requires_grad=False`` freezes the
    affine parameters).
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'norm_cfg must be a dict with a "type", got {cfg!r}')
    args = dict(cfg)
    layer_type = args.pop('type')
    requires_grad = args.pop('requires_grad', True)
    if layer_type not in NORM_LAYERS:
        raise ValueError(f'unknown norm type {layer_type!r}; '
                         f'choose one of {sorted(NORM_LAYERS)}')
    if layer_type == 'GN':
        if 'num_groups' not in args:
            raise ValueError('GN needs num_groups, e.g. dict(type="GN", num_groups=32)')
        layer = nn.GroupNorm(num_channels=num_features, **args)
    else:
        layer = NORM_LAYERS[layer_type](num_features, **args)
    for p in layer.parameters():
        p.requires_grad = requires_grad
    return layer
