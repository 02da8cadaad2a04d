"""What the mask head's losses share: the (N, M, M) contract, the loss
weight, and a zero loss with gradient when no RoI is positive."""
from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class MaskLoss(nn.Module, ABC):
    """Base of the mask losses (``DiceLoss``, ``BinaryCrossEntropyLoss``).

    Args:
        loss_weight: multiplier of the loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, mask_logits: Tensor, mask_targets: Tensor) -> Tensor:
        """
        Args:
            mask_logits: (N, M, M) logits of the positive RoIs.
            mask_targets: (N, M, M) binary targets (float or bool).

        Returns:
            scalar loss (0 with gradient when N = 0).
        """
        if mask_logits.shape[0] == 0:
            return mask_logits.sum() * 0.0
        return self.loss_weight * self.unweighted(
            mask_logits, mask_targets.to(mask_logits.dtype))

    @abstractmethod
    def unweighted(self, mask_logits: Tensor, mask_targets: Tensor) -> Tensor:
        """The loss of N >= 1 RoIs, ``mask_targets`` float like the logits."""
