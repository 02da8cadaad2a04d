"""Detection heads: RPN, RoI head with box and mask branches (torchvision blocks)."""
from __future__ import annotations

from a3d_det.models.heads import torchvision_adapter  # noqa: F401  (registers torchvision blocks)
from a3d_det.models.heads.fcn_mask_head import FCNMaskHead
from a3d_det.models.heads.lesion_roi_head import LesionRoIHead
from a3d_det.models.heads.lesion_rpn_head import LesionRPNHead
from a3d_det.models.heads.shared_fc_bbox_head import SharedFCBBoxHead

__all__ = ['FCNMaskHead', 'LesionRoIHead', 'LesionRPNHead', 'SharedFCBBoxHead']
