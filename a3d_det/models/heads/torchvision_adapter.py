"""The one boundary between a3d_det and torchvision's detection internals.

torchvision's box coder, matcher and sampler live in the private module
``torchvision.models.detection._utils`` (tested with torchvision 0.19 to
0.29); it is imported here and nowhere else. This file also registers the
public torchvision blocks the configs name (``AnchorGenerator``, ``RoIAlign``)
and converts labels between the two conventions, so that conversion happens in
exactly one place:

* a3d_det (mmdet convention): ``0`` = lesion, no background label;
* torchvision: ``0`` = background, ``1`` = lesion.
"""
import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import RoIAlign

from a3d_det.registry import MODELS, TASK_UTILS

__all__ = ['BoxCoder', 'Matcher', 'BalancedPositiveNegativeSampler',
           'AnchorGenerator', 'RoIAlign', 'paste_masks_in_image',
           'to_torchvision_labels', 'from_torchvision_labels']

# Box coder (Faster R-CNN deltas); ``weights`` are the inverse target stds,
# e.g. (10, 10, 5, 5) for the paper's stds (0.1, 0.1, 0.2, 0.2).
BoxCoder = TASK_UTILS.register_module(name='BoxCoder', module=det_utils.BoxCoder)
# IoU matcher: -1 below ``low_threshold``, -2 between the thresholds.
Matcher = TASK_UTILS.register_module(name='Matcher', module=det_utils.Matcher)
# Random sampler keeping ``positive_fraction`` positives out of ``batch_size_per_image``.
BalancedPositiveNegativeSampler = TASK_UTILS.register_module(
    name='BalancedPositiveNegativeSampler',
    module=det_utils.BalancedPositiveNegativeSampler)
TASK_UTILS.register_module(name='AnchorGenerator', module=AnchorGenerator)
MODELS.register_module(name='RoIAlign', module=RoIAlign)

# torchvision's label of the first foreground class.
_TORCHVISION_FIRST_FOREGROUND = 1


def to_torchvision_labels(labels: Tensor) -> Tensor:
    """a3d_det labels (0 = lesion) -> torchvision labels (0 = background).

    Args:
        labels: (M,) integer labels in a3d_det's convention.

    Returns:
        (M,) int64 labels in torchvision's convention.
    """
    return labels.to(torch.int64) + _TORCHVISION_FIRST_FOREGROUND


def from_torchvision_labels(labels: Tensor) -> Tensor:
    """torchvision foreground labels (1 = lesion) -> a3d_det labels (0 = lesion).

    Args:
        labels: (N,) int64 foreground labels in torchvision's convention (>= 1).

    Returns:
        (N,) int64 labels in a3d_det's convention.
    """
    return labels.to(torch.int64) - _TORCHVISION_FIRST_FOREGROUND
