"""One-level region proposal network (Faster R-CNN RPN) on torchvision's blocks."""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from a3d_det.models.heads.torchvision_adapter import MinIoUMatcher
from a3d_det.registry import MODELS, TASK_UTILS


@MODELS.register_module()
class LesionRPNHead(RegionProposalNetwork):
    """torchvision's ``RegionProposalNetwork`` built from a config dict.

    One feature level (the neck's stride-4 map). With the paper's anchors
    (base size 4 x scales 4, 6, 8, 12, 24, 48 = 16..192 px, ratios 0.5/1/2)
    each location carries 18 anchors. Training: anchors matched at IoU >= 0.7
    positive / < 0.3 negative, 32 sampled per image at 0.5 positive,
    objectness BCE and smooth-L1 (beta 1/9) box loss, as in the official
    configuration. Proposals: top ``pre_nms_top_n`` by objectness, NMS at
    ``nms_thresh``, top ``post_nms_top_n`` kept.

    Two rules of the published (mmdet v1) RPN training extend torchvision's:
    a lesion's best anchor is positive only when its IoU is at least
    ``min_pos_iou`` (torchvision: at any IoU, ``min_pos_iou=0``), and
    anchors crossing the border of the padded input by more than
    ``allowed_border`` pixels are ignored (label -1: neither positive nor
    negative; ``allowed_border=-1`` keeps them all, torchvision's rule).

    Args:
        in_channels: channels of the feature map (given by the detector).
        anchor_generator: TASK_UTILS config, e.g.
            ``dict(type='AnchorGenerator', sizes=((16, ..., 192),), aspect_ratios=((0.5, 1.0, 2.0),))``.
        fg_iou_thresh / bg_iou_thresh: anchor matching thresholds.
        batch_size_per_image / positive_fraction: anchor sampling.
        pre_nms_top_n / post_nms_top_n: ``dict(training=..., testing=...)``.
        nms_thresh: proposal NMS IoU.
        min_pos_iou: minimum IoU of a lesion's best-anchor match.
        allowed_border: pixels an anchor may cross the padded input's border
            by and still be trained on; -1 keeps every anchor.
        score_thresh: minimum objectness probability of a proposal.
        conv_depth: number of 3 x 3 convolutions before the two predictors.
    """

    def __init__(self,
                 in_channels: int,
                 anchor_generator: dict,
                 fg_iou_thresh: float = 0.7,
                 bg_iou_thresh: float = 0.3,
                 batch_size_per_image: int = 32,
                 positive_fraction: float = 0.5,
                 pre_nms_top_n: dict[str, int] | None = None,
                 post_nms_top_n: dict[str, int] | None = None,
                 nms_thresh: float = 0.7,
                 min_pos_iou: float = 0.0,
                 allowed_border: float = -1,
                 score_thresh: float = 0.0,
                 conv_depth: int = 1) -> None:
        anchors = TASK_UTILS.build(anchor_generator)
        if len(anchors.sizes) != 1:
            raise ValueError('LesionRPNHead works on one feature level; the anchor '
                             f'generator has {len(anchors.sizes)} levels of sizes')
        head = RPNHead(in_channels, anchors.num_anchors_per_location()[0],
                       conv_depth=conv_depth)
        super().__init__(
            anchors, head, fg_iou_thresh, bg_iou_thresh, batch_size_per_image,
            positive_fraction,
            dict(training=2000, testing=1000) if pre_nms_top_n is None else dict(pre_nms_top_n),
            dict(training=2000, testing=300) if post_nms_top_n is None else dict(post_nms_top_n),
            nms_thresh, score_thresh)
        self.proposal_matcher = MinIoUMatcher(fg_iou_thresh, bg_iou_thresh,
                                              allow_low_quality_matches=True,
                                              min_pos_iou=min_pos_iou)
        if allowed_border < 0 and allowed_border != -1:
            raise ValueError(f'allowed_border must be >= 0 or -1 (keep all), got {allowed_border}')
        self.min_pos_iou = float(min_pos_iou)
        self.allowed_border = allowed_border

    def forward(self, images: ImageList, feature: Tensor,  # type: ignore[override]
                gt_bboxes: list[Tensor] | None = None
                ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """
        Args:
            images: the padded batch (``tensors`` (B, 1, D, H, W); anchors read
                only H and W) and ``image_sizes`` [(h, w)] before padding.
            feature: (B, C, H/s, W/s) neck output.
            gt_bboxes: in training, per image (M_i, 4) x1y1x2y2 input-pixel
                boxes (M_i may be 0).

        Returns:
            proposals: per image (P_i, 4) boxes in input pixels (detached).
            losses: ``loss_rpn_cls`` and ``loss_rpn_bbox`` in training, else {}.
        """
        # The padded input size travels with the targets to the anchor labels.
        size = torch.tensor(images.tensors.shape[-2:])
        targets = None if gt_bboxes is None else [dict(boxes=b, padded_size=size)
                                                  for b in gt_bboxes]
        proposals, losses = super().forward(images, {'0': feature}, targets)
        renamed = {'loss_rpn_cls': losses['loss_objectness'],
                   'loss_rpn_bbox': losses['loss_rpn_box_reg']} if losses else {}
        return proposals, renamed

    def assign_targets_to_anchors(self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
                                  ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's anchor labels (1 / 0 / -1), then anchors crossing the
        padded input's border by more than ``allowed_border`` set to -1."""
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        if self.allowed_border >= 0:
            b = float(self.allowed_border)
            for lab, anc, tgt in zip(labels, anchors, targets):
                h, w = (float(v) for v in tgt['padded_size'].tolist())
                inside = ((anc[:, 0] >= -b) & (anc[:, 1] >= -b)
                          & (anc[:, 2] <= w + b) & (anc[:, 3] <= h + b))
                lab.masked_fill_(~inside, -1.0)
        return labels, matched

    def head_outputs(self, feature: Tensor) -> tuple[Tensor, Tensor]:
        """Raw predictor outputs: objectness (B, A, h, w), deltas (B, 4A, h, w)."""
        objectness, deltas = self.head([feature])
        return objectness[0], deltas[0]
