"""Softmax cross-entropy classification loss of the RoI box head."""
from __future__ import annotations

from torch import Tensor, nn
import torch.nn.functional as F

from a3d_det.registry import MODELS


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Mean softmax cross-entropy over samples.

    Args:
        loss_weight: multiplier of the loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, cls_score: Tensor, labels: Tensor) -> Tensor:
        """
        Args:
            cls_score: (N, C) logits, column 0 = background (torchvision order).
            labels: (N,) int64 class indices in the same order.

        Returns:
            scalar loss (0 with gradient when N = 0).
        """
        if cls_score.shape[0] == 0:
            return cls_score.sum() * 0.0
        return self.loss_weight * F.cross_entropy(cls_score, labels)
