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
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import RoIAlign

from a3d_det.registry import MODELS, TASK_UTILS

__all__ = ['BoxCoder', 'Matcher', 'MinIoUMatcher', 'BalancedPositiveNegativeSampler',
           'AnchorGenerator', 'CenterOffsetAnchorGenerator', 'RoIAlign', 'paste_masks_in_image',
           'to_torchvision_labels', 'from_torchvision_labels']

# Box coder (Faster R-CNN deltas); ``weights`` are the inverse target stds,
# e.g. (10, 10, 5, 5) for the paper's stds (0.1, 0.1, 0.2, 0.2).
BoxCoder = TASK_UTILS.register_module(name='BoxCoder', module=det_utils.BoxCoder)
# IoU matcher: -1 below ``low_threshold``, -2 between the thresholds.
Matcher = TASK_UTILS.register_module(name='Matcher', module=det_utils.Matcher)


@TASK_UTILS.register_module()
class MinIoUMatcher(det_utils.Matcher):
    """torchvision's ``Matcher`` whose low-quality matches need a minimum IoU.

    With ``allow_low_quality_matches=True`` torchvision makes each ground
    truth's best prediction(s) positive at any IoU; here only a ground truth
    whose best IoU is >= ``min_pos_iou`` does (mmdet's ``MaxIoUAssigner``
    ``min_pos_iou``, 0.3 in the published RPN). ``min_pos_iou=0`` is
    torchvision's behaviour.
    """

    def __init__(self, high_threshold: float, low_threshold: float,
                 allow_low_quality_matches: bool = True, min_pos_iou: float = 0.0) -> None:
        super().__init__(high_threshold, low_threshold, allow_low_quality_matches)
        if not 0.0 <= min_pos_iou <= 1.0:
            raise ValueError(f'min_pos_iou must be in [0, 1], got {min_pos_iou}')
        self.min_pos_iou = float(min_pos_iou)

    def set_low_quality_matches_(self, matches: Tensor, all_matches: Tensor,
                                 match_quality_matrix: Tensor) -> None:
        if self.min_pos_iou <= 0:
            return super().set_low_quality_matches_(matches, all_matches, match_quality_matrix)
        # As torchvision (ties included), for the eligible ground truths only.
        highest, _ = match_quality_matrix.max(dim=1)
        eligible = (highest >= self.min_pos_iou)[:, None]
        pairs = torch.where((match_quality_matrix == highest[:, None]) & eligible)
        matches[pairs[1]] = all_matches[pairs[1]]


# Random sampler keeping ``positive_fraction`` positives out of ``batch_size_per_image``.
BalancedPositiveNegativeSampler = TASK_UTILS.register_module(
    name='BalancedPositiveNegativeSampler',
    module=det_utils.BalancedPositiveNegativeSampler)
TASK_UTILS.register_module(name='AnchorGenerator', module=AnchorGenerator)


@TASK_UTILS.register_module()
class CenterOffsetAnchorGenerator(AnchorGenerator):
    """torchvision's ``AnchorGenerator`` with the anchor centres moved by
    ``center_offset`` of the stride.

    torchvision centres the anchors of feature cell ``i`` at ``i * stride``;
    mmdet v1 (the published code) at ``i * stride + (base_size - 1) / 2`` in
    its inclusive pixel convention, i.e. ``(i + 0.5) * stride`` in pixel-edge
    coordinates: ``center_offset=0.5`` gives the published anchors (same
    rounded widths and heights, centres half a stride further).
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),),
                 center_offset: float = 0.0) -> None:
        super().__init__(sizes, aspect_ratios)
        self.center_offset = float(center_offset)

    def grid_anchors(self, grid_sizes, strides):
        anchors = super().grid_anchors(grid_sizes, strides)
        if not self.center_offset:
            return anchors
        out = []
        for a, (stride_h, stride_w) in zip(anchors, strides):
            shift = torch.stack([stride_w, stride_h, stride_w, stride_h]).to(a)
            out.append(a + shift * self.center_offset)
        return out
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
