"""Dice loss of the mask head (the official A3D/AlignShift configuration)."""
from __future__ import annotations

from torch import Tensor

from a3d_det.models.losses.mask_loss import MaskLoss
from a3d_det.registry import MODELS


@MODELS.register_module()
class DiceLoss(MaskLoss):
    """Per-RoI soft Dice loss on sigmoid probabilities, averaged over RoIs.

    ``1 - (2 * sum(p * t) + eps) / (sum(p) + sum(t) + eps)`` for each RoI
    (Milletari et al., V-Net, 2016, Eq. 1 without squares).

    Args:
        eps: smoothing term of numerator and denominator.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, eps: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight)
        self.eps = eps

    def unweighted(self, mask_logits: Tensor, mask_targets: Tensor) -> Tensor:
        prob = mask_logits.sigmoid().flatten(1)
        target = mask_targets.flatten(1)
        inter = (prob * target).sum(1)
        dice = (2 * inter + self.eps) / (prob.sum(1) + target.sum(1) + self.eps)
        return (1 - dice).mean()
