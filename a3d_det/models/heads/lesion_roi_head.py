"""Mask R-CNN RoI head (box + mask branches) with the A3D configuration's losses.

Written on torchvision's ops instead of using ``torchvision``'s ``RoIHeads``,
which hard-codes a smooth-L1 beta of 1/9 and a BCE mask loss.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, roi_align

from a3d_det.models.heads.mask_paste import paste_masks_in_image
from a3d_det.models.heads.torchvision_adapter import from_torchvision_labels, to_torchvision_labels
from a3d_det.registry import MODELS, TASK_UTILS


@MODELS.register_module()
class LesionRoIHead(nn.Module):
    """Samples RoIs, pools them and runs the box and mask heads.

    Training (Mask R-CNN, He et al. 2017, Sec. 3; settings of the official A3D
    configuration): ground truths are added to the proposals, proposals
    matched at IoU >= 0.5 are positive and < 0.5 negative, 64 RoIs per image
    are sampled at 0.25 positive; the box head sees all sampled RoIs through a
    7 x 7 RoIAlign, the mask head the positive ones through a 14 x 14 RoIAlign,
    against 28 x 28 targets cut from the ground-truth masks.

    Inference: softmax scores, class-specific decoded boxes clipped to the
    image, score threshold ``score_thr``, NMS at ``nms_iou`` per class, at most
    ``max_per_img``; masks predicted for the kept boxes and pasted into the
    original image.

    Args:
        in_channels: channels of the feature map (given by the detector).
        featmap_stride: stride of the feature map (given by the detector).
        bbox_roi_extractor / mask_roi_extractor: ``RoIAlign`` configs
            (``output_size``, ``sampling_ratio``, ``aligned``); the spatial
            scale is set from ``featmap_stride``.
        bbox_head / mask_head: head configs (in_channels is filled in).
        proposal_matcher / sampler / box_coder: TASK_UTILS configs.
        add_gt_as_proposals: add the ground-truth boxes to the proposals in
            training (as mmdetection's sampler).
        score_thr / nms_iou / max_per_img / mask_thr: inference settings.
        min_box_size: boxes with a side below this (input pixels) are dropped
            at inference.
    """

    def __init__(self,
                 in_channels: int,
                 featmap_stride: int,
                 bbox_roi_extractor: dict,
                 bbox_head: dict,
                 mask_roi_extractor: dict,
                 mask_head: dict,
                 proposal_matcher: dict,
                 sampler: dict,
                 box_coder: dict,
                 add_gt_as_proposals: bool = True,
                 score_thr: float = 5e-5,
                 nms_iou: float = 0.5,
                 max_per_img: int = 50,
                 mask_thr: float = 0.5,
                 min_box_size: float = 1e-2) -> None:
        super().__init__()
        scale = 1.0 / featmap_stride
        self.bbox_roi_extractor = MODELS.build(dict(bbox_roi_extractor, spatial_scale=scale))
        self.mask_roi_extractor = MODELS.build(dict(mask_roi_extractor, spatial_scale=scale))
        box_size = self.bbox_roi_extractor.output_size
        self.bbox_head = MODELS.build(dict(bbox_head, in_channels=in_channels,
                                           roi_feat_size=_side(box_size)))
        self.mask_head = MODELS.build(dict(mask_head, in_channels=in_channels))
        self.proposal_matcher = TASK_UTILS.build(proposal_matcher)
        self.sampler = TASK_UTILS.build(sampler)
        self.box_coder = TASK_UTILS.build(box_coder)
        self.add_gt_as_proposals = add_gt_as_proposals
        self.score_thr = score_thr
        self.nms_iou = nms_iou
        self.max_per_img = max_per_img
        self.mask_thr = mask_thr
        self.min_box_size = min_box_size

    # ------------------------------------------------------------------ training
    def _sample(self, proposals: Tensor, gt_bboxes: Tensor, gt_labels: Tensor
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Match and sample the RoIs of one image.

        Args:
            proposals: (P, 4) boxes; gt_bboxes: (M, 4); gt_labels: (M,) a3d labels.

        Returns:
            rois (S, 4), labels (S,) torchvision int64, matched gt index (S,)
            (meaningful where label > 0), regression targets (S, 4).
        """
        if self.add_gt_as_proposals:
            proposals = torch.cat([proposals, gt_bboxes.to(proposals)])
        if gt_bboxes.shape[0] == 0:
            # An image without lesions: every proposal is background.
            matched = torch.zeros(proposals.shape[0], dtype=torch.int64,
                                  device=proposals.device)
            labels = torch.zeros_like(matched)
            gt_for_rois = torch.zeros_like(proposals)
        else:
            matched = self.proposal_matcher(box_iou(gt_bboxes, proposals))
            labels = to_torchvision_labels(gt_labels)[matched.clamp(min=0)]
            # masked_fill_, not labels[mask] = v: boolean indexing calls
            # nonzero, a host-device synchronisation on CUDA.
            labels.masked_fill_(matched == self.proposal_matcher.BELOW_LOW_THRESHOLD, 0)
            labels.masked_fill_(matched == self.proposal_matcher.BETWEEN_THRESHOLDS, -1)
            matched = matched.clamp(min=0)
            gt_for_rois = gt_bboxes[matched]
        pos_mask, neg_mask = self.sampler([labels])
        keep = torch.where(pos_mask[0] | neg_mask[0])[0]
        rois = proposals[keep]
        targets = self.box_coder.encode_single(gt_for_rois[keep], rois)
        return rois, labels[keep], matched[keep], targets

    def loss(self, feature: Tensor, proposals: Sequence[Tensor],
             gt_bboxes: Sequence[Tensor], gt_labels: Sequence[Tensor],
             gt_masks: Sequence[Tensor]) -> dict[str, Tensor]:
        """
        Args:
            feature: (B, C, H/s, W/s) neck output.
            proposals: per image (P_i, 4) RPN proposals in input pixels.
            gt_bboxes: per image (M_i, 4) input-pixel boxes (M_i may be 0).
            gt_labels: per image (M_i,) int64 labels, 0 = lesion.
            gt_masks: per image (M_i, H', W') binary masks in input pixels.

        Returns:
            ``loss_cls``, ``loss_bbox``, ``loss_mask``.
        """
        # 1. Match proposals to lesions and sample 64 RoIs per image.
        samples = [self._sample(p, b, l) for p, b, l in zip(proposals, gt_bboxes, gt_labels)]
        rois = [s[0] for s in samples]
        labels = torch.cat([s[1] for s in samples])
        targets = torch.cat([s[3] for s in samples])
        # 2. Box branch: (S, C, 7, 7) -> scores (S, K+1), deltas (S, 4K).
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi_extractor(feature, rois))
        losses = self.bbox_head.loss(cls_score, bbox_pred, labels, targets)
        # 3. Mask branch on the positive RoIs: (P, C, 14, 14) -> (P, K, 28, 28).
        pos_rois, pos_targets, pos_labels = [], [], []
        for (img_rois, img_labels, img_matched, _), masks in zip(samples, gt_masks):
            pos = torch.where(img_labels > 0)[0]
            pos_rois.append(img_rois[pos])
            pos_labels.append(img_labels[pos])
            pos_targets.append((masks, img_matched[pos]))
        mask_logits = self.mask_head(self.mask_roi_extractor(feature, pos_rois))
        size = mask_logits.shape[-1]
        mask_targets = torch.cat([
            _crop_masks(masks, boxes, idx, size)
            for boxes, (masks, idx) in zip(pos_rois, pos_targets)])
        losses.update(self.mask_head.loss(mask_logits, mask_targets, torch.cat(pos_labels)))
        return losses

    # ----------------------------------------------------------------- inference
    def forward(self, feature: Tensor, proposals: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Raw box-head outputs on the proposals (for ``tensor`` mode).

        Returns:
            cls_score (sum P_i, K+1) and bbox_pred (sum P_i, 4K).
        """
        return self.bbox_head(self.bbox_roi_extractor(feature, list(proposals)))

    def predict(self, feature: Tensor, proposals: Sequence[Tensor],
                batch_img_metas: Sequence[dict],
                with_mask: bool = True) -> list[InstanceData]:
        """
        Args:
            feature: (B, C, H/s, W/s) neck output.
            proposals: per image (P_i, 4) proposals in input pixels.
            batch_img_metas: per image meta with ``img_shape`` (h, w) and
                optionally ``scale_factor`` (w, h) and ``ori_shape`` (H0, W0).
            with_mask: run the mask branch; ``False`` skips it (boxes and
                scores are the same either way).

        Returns:
            per image ``InstanceData`` with ``bboxes`` (N, 4) in original
            pixels, ``scores`` (N,), ``labels`` (N,) int64 (0 = lesion) and,
            with ``with_mask``, ``masks`` (N, H0, W0) bool.
        """
        # 1. Box branch on all proposals: scores (P, K+1), deltas (P, 4K).
        cls_score, bbox_pred = self.forward(feature, proposals)
        num_per_img = [p.shape[0] for p in proposals]
        results = []
        for i, (props, scores, deltas, meta) in enumerate(zip(
                proposals, cls_score.softmax(-1).split(num_per_img),
                bbox_pred.split(num_per_img), batch_img_metas)):
            img_shape = tuple(meta['img_shape'][:2])
            # 2. Decode class-specific boxes: (P, K, 4), clip to the image.
            boxes = self.box_coder.decode_single(deltas, props).reshape(
                props.shape[0], deltas.shape[1] // 4, 4)
            boxes = clip_boxes_to_image(boxes, img_shape)
            num_classes = boxes.shape[1]
            labels = torch.arange(1, num_classes + 1, device=boxes.device).expand(props.shape[0], -1)
            boxes, scores, labels = boxes.reshape(-1, 4), scores[:, 1:].reshape(-1), labels.reshape(-1)
            # 3. Score threshold and small boxes (one nonzero for both, the
            #    same boxes as thresholding then torchvision's
            #    remove_small_boxes), per-class NMS, top max_per_img.
            widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            keep = torch.where((scores > self.score_thr) & (widths >= self.min_box_size)
                               & (heights >= self.min_box_size))[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_iou)[:self.max_per_img]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            # 4. Mask branch on the kept boxes: (N, K, 28, 28) -> class channel.
            mask_probs = None
            if with_mask:
                mask_logits = self.mask_head(self.mask_roi_extractor(
                    feature[i:i + 1], [boxes]))
                index = torch.arange(boxes.shape[0], device=boxes.device)
                mask_probs = mask_logits[index, labels - 1].sigmoid()
            # 5. Back to original pixels: boxes / scale_factor, paste masks.
            results.append(self._to_original(boxes, scores, labels, mask_probs, meta))
        return results

    def _to_original(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                     mask_probs: Tensor | None, meta: dict) -> InstanceData:
        """Rescale (N, 4) input-pixel boxes and paste (N, M, M) masks (when
        given) into the original image."""
        img_shape = tuple(meta['img_shape'][:2])
        ori_shape = tuple(meta.get('ori_shape', img_shape)[:2])
        w_scale, h_scale = meta.get('scale_factor', (1.0, 1.0))[:2]
        boxes = boxes / boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])
        boxes = clip_boxes_to_image(boxes, ori_shape)
        result = InstanceData()
        result.bboxes = boxes
        result.scores = scores
        result.labels = from_torchvision_labels(labels)
        if mask_probs is not None:
            if boxes.shape[0]:
                masks = paste_masks_in_image(mask_probs[:, None], boxes, ori_shape)[:, 0]
            else:
                masks = mask_probs.new_zeros((0,) + ori_shape)
            result.masks = masks > self.mask_thr
        return result


def _side(output_size) -> int:
    """Side of a square RoIAlign output given as int or (h, w)."""
    if isinstance(output_size, int):
        return output_size
    if output_size[0] != output_size[1]:
        raise ValueError(f'RoI features must be square, got {output_size}')
    return int(output_size[0])


def _crop_masks(gt_masks: Tensor, boxes: Tensor, gt_index: Tensor, size: int) -> Tensor:
    """Cut mask targets: gt masks (M, H, W), boxes (P, 4), index (P,) -> (P, size, size) binary.

    The target of a RoI is its matched ground-truth mask resampled to the
    RoI's box (RoIAlign of the mask, thresholded at 0.5, as Mask R-CNN).
    """
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, size, size))
    rois = torch.cat([gt_index.to(boxes)[:, None], boxes], dim=1)
    crops = roi_align(gt_masks[:, None].to(boxes), rois, (size, size),
                      spatial_scale=1.0, sampling_ratio=2, aligned=True)[:, 0]
    return (crops >= 0.5).to(boxes)
