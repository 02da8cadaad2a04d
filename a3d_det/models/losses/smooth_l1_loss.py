"""Smooth-L1 box regression loss (Fast R-CNN, Girshick 2015, Eq. 3)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from a3d_det.registry import MODELS


@MODELS.register_module()
class SmoothL1Loss(nn.Module):
    """Smooth-L1 summed over the given elements, divided by ``avg_factor``.

    The A3D/AlignShift configuration uses ``beta=1.0`` in the RoI box head
    (torchvision's ``RoIHeads`` hard-codes 1/9, one reason for our own head).

    Args:
        beta: transition point from the quadratic to the linear part.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f'SmoothL1Loss: beta must be > 0, got {beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor,
                avg_factor: float | None = None) -> Tensor:
        """
        Args:
            pred: (N, 4) predicted deltas (positive samples only).
            target: (N, 4) target deltas.
            avg_factor: divisor of the sum (e.g. the number of sampled RoIs,
                positives and negatives); ``None`` = number of rows of ``pred``.

        Returns:
            scalar loss; 0 (with gradient) when ``pred`` is empty.
        """
        total = F.smooth_l1_loss(pred, target, beta=self.beta, reduction='sum')
        if avg_factor is None:
            avg_factor = pred.shape[0]
        return self.loss_weight * total / max(float(avg_factor), 1.0)
