"""Losses of the detection heads (registered in MODELS)."""
from .binary_cross_entropy_loss import BinaryCrossEntropyLoss
from .cross_entropy_loss import CrossEntropyLoss
from .dice_loss import DiceLoss
from .smooth_l1_loss import SmoothL1Loss

__all__ = ['BinaryCrossEntropyLoss', 'CrossEntropyLoss', 'DiceLoss', 'SmoothL1Loss']
