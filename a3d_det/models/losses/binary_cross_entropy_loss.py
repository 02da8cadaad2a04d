"""Per-pixel binary cross-entropy mask loss (Mask R-CNN, He et al. 2017, Sec. 3)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from a3d_det.models.losses.mask_loss import MaskLoss
from a3d_det.registry import MODELS


@MODELS.register_module()
class BinaryCrossEntropyLoss(MaskLoss):
    """Mean sigmoid binary cross-entropy over all pixels of all RoIs.

    Selectable in place of :class:`DiceLoss` as the mask head's loss.

    Args:
        loss_weight: multiplier of the loss.
    """

    def unweighted(self, mask_logits: Tensor, mask_targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(mask_logits, mask_targets)
