"""Per-pixel binary cross-entropy mask loss (Mask R-CNN, He et al. 2017, Sec. 3)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from a3d_det.registry import MODELS


@MODELS.register_module()
class BinaryCrossEntropyLoss(nn.Module):
    """Mean sigmoid binary cross-entropy over all pixels of all RoIs.

    Selectable in place of :class:`DiceLoss` as the mask head's loss.

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
        return self.loss_weight * F.binary_cross_entropy_with_logits(
            mask_logits, mask_targets.to(mask_logits.dtype))
