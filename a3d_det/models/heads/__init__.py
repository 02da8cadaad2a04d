"""Detection heads: RPN, RoI head with box and mask branches (torchvision blocks)."""
from . import torchvision_adapter  # noqa: F401  (registers torchvision blocks)
from .fcn_mask_head import FCNMaskHead
from .lesion_roi_head import LesionRoIHead
from .lesion_rpn_head import LesionRPNHead
from .shared_fc_bbox_head import SharedFCBBoxHead

__all__ = ['FCNMaskHead', 'LesionRoIHead', 'LesionRPNHead', 'SharedFCBBoxHead']
