"""Losses of the detection heads (registered in MODELS)."""
from __future__ import annotations

from a3d_det.models.losses.binary_cross_entropy_loss import BinaryCrossEntropyLoss
from a3d_det.models.losses.cross_entropy_loss import CrossEntropyLoss
from a3d_det.models.losses.dice_loss import DiceLoss
from a3d_det.models.losses.smooth_l1_loss import SmoothL1Loss

__all__ = ['BinaryCrossEntropyLoss', 'CrossEntropyLoss', 'DiceLoss', 'SmoothL1Loss']
