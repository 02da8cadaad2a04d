import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from a3d_det.models.heads.torchvision_adapter import (from_torchvision_labels,
                                                      to_torchvision_labels)
from a3d_det.registry import MODELS

ANCHORS = dict(type='AnchorGenerator', sizes=((16, 24, 32, 48, 96, 192),),
               aspect_ratios=((0.5, 1.0, 2.0),))


def _roi_head(**overrides):
    cfg = dict(
        type='LesionRoIHead', in_channels=8, featmap_stride=4,
        bbox_roi_extractor=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=True),
        bbox_head=dict(type='SharedFCBBoxHead', fc_out_channels=32),
        mask_roi_extractor=dict(type='RoIAlign', output_size=14, sampling_ratio=2, aligned=True),
        mask_head=dict(type='FCNMaskHead', conv_out_channels=8),
        proposal_matcher=dict(type='Matcher', high_threshold=0.5, low_threshold=0.5,
                              allow_low_quality_matches=False),
        sampler=dict(type='BalancedPositiveNegativeSampler', batch_size_per_image=64,
                     positive_fraction=0.25),
        box_coder=dict(type='BoxCoder', weights=(10.0, 10.0, 5.0, 5.0)))
    cfg.update(overrides)
    return MODELS.build(cfg)


def _random_boxes(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (size - 20)
    wh = 4 + torch.rand(n, 2, generator=g) * 16
    return torch.cat([xy, xy + wh], dim=1)


def test_label_conversion_round_trip():
    labels = torch.zeros(3, dtype=torch.int64)
    assert to_torchvision_labels(labels).tolist() == [1, 1, 1]
    assert from_torchvision_labels(to_torchvision_labels(labels)).tolist() == [0, 0, 0]


def test_rpn_one_level_18_anchors_and_losses_with_empty_gt():
    rpn = MODELS.build(dict(type='LesionRPNHead', in_channels=8, anchor_generator=ANCHORS))
    assert rpn.anchor_generator.num_anchors_per_location() == [18]
    feature = torch.randn(2, 8, 16, 16, requires_grad=True)
    images = ImageList(torch.zeros(2, 1, 3, 64, 64), [(64, 64), (60, 50)])
    gt = [torch.tensor([[10.0, 10.0, 30.0, 40.0]]), torch.zeros(0, 4)]
    rpn.train()
    proposals, losses = rpn(images, feature, gt)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert feature.grad.abs().sum() > 0
    # proposals are clipped to each image's own size
    assert proposals[1][:, 2].max() <= 50 and proposals[1][:, 3].max() <= 60
    rpn.eval()
    proposals, losses = rpn(images, feature.detach())
    assert losses == {} and all(p.shape[0] <= 300 for p in proposals)


def test_roi_sampling_empty_gt_is_all_background():
    head = _roi_head()
    rois, labels, _, targets = head._sample(_random_boxes(200, 64, 0), torch.zeros(0, 4),
                                            torch.zeros(0, dtype=torch.int64))
    assert labels.numel() == 64 and (labels == 0).all()
    assert rois.shape == (64, 4) and targets.shape == (64, 4)


def test_roi_sampling_adds_gt_and_caps_positives():
    head = _roi_head()
    gt = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    proposals = gt.repeat(40, 1) + torch.randn(40, 4) * 0.5
    proposals = torch.cat([proposals, _random_boxes(100, 64, 1) + 100])  # far negatives
    rois, labels, matched, targets = head._sample(proposals, gt, torch.zeros(1, dtype=torch.int64))
    assert labels.numel() == 64
    assert (labels == 1).sum() == 16  # 64 x 0.25 positives, torchvision label 1
    assert (matched[labels == 1] == 0).all()
    # the gt box itself, if sampled, has zero regression target
    exact = (rois == gt).all(1)
    assert torch.allclose(targets[exact], torch.zeros_like(targets[exact]))
    head_no_gt = _roi_head(add_gt_as_proposals=False)
    _, labels, _, _ = head_no_gt._sample(_random_boxes(50, 64, 2) + 100, gt,
                                         torch.zeros(1, dtype=torch.int64))
    assert (labels == 0).all()  # no proposal overlaps and the gt was not added


def test_roi_loss_half_empty_batch_and_mask_targets():
    torch.manual_seed(0)
    head = _roi_head()
    feature = torch.randn(2, 8, 16, 16, requires_grad=True)
    gt_boxes = [torch.tensor([[8.0, 8.0, 40.0, 40.0]]), torch.zeros(0, 4)]
    masks = [torch.zeros(1, 64, 64, dtype=torch.bool), torch.zeros(0, 64, 64, dtype=torch.bool)]
    masks[0][0, 8:40, 8:40] = True
    proposals = [_random_boxes(100, 64, 3), _random_boxes(100, 64, 4)]
    losses = head.loss(feature, proposals, gt_boxes,
                       [torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)], masks)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_mask'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert feature.grad.abs().sum() > 0


def test_mask_targets_follow_the_roi():
    from a3d_det.models.heads.lesion_roi_head import _crop_masks
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[1, 10:30, 20:40] = True  # x 20..40, y 10..30
    boxes = torch.tensor([[20.0, 10.0, 40.0, 30.0], [20.0, 10.0, 60.0, 30.0]])
    crops = _crop_masks(masks, boxes, torch.tensor([1, 1]), 28)
    assert crops.shape == (2, 28, 28)
    assert crops[0].all()                       # box == mask: all ones
    assert crops[1, :, :12].all() and not crops[1, :, 16:].any()  # left half only


def test_predict_format_and_limits():
    torch.manual_seed(0)
    head = _roi_head(max_per_img=5).eval()
    feature = torch.randn(1, 8, 16, 16)
    meta = dict(img_shape=(64, 64), ori_shape=(128, 128), scale_factor=(0.5, 0.5))
    with torch.no_grad():
        result = head.predict(feature, [_random_boxes(40, 64, 5)], [meta])[0]
    n = result.bboxes.shape[0]
    assert 0 < n <= 5
    assert result.scores.shape == (n,) and (result.scores[:-1] >= result.scores[1:]).all()
    assert result.labels.dtype == torch.int64 and (result.labels == 0).all()
    assert result.masks.shape == (n, 128, 128) and result.masks.dtype == torch.bool
    assert result.bboxes.min() >= 0 and result.bboxes.max() <= 128
    # no detection at all: empty but well-formed
    head.score_thr = 1.1
    with torch.no_grad():
        empty = head.predict(feature, [_random_boxes(40, 64, 5)], [meta])[0]
    assert empty.bboxes.shape == (0, 4) and empty.masks.shape == (0, 128, 128)
    # an image without any proposal (beside one with proposals)
    head.score_thr = 0.0
    with torch.no_grad():
        none, some = head.predict(feature.expand(2, -1, -1, -1),
                                  [torch.zeros(0, 4), _random_boxes(40, 64, 5)],
                                  [meta, meta])
    assert none.bboxes.shape == (0, 4) and none.masks.shape == (0, 128, 128)
    assert some.bboxes.shape[0] > 0


def test_bbox_head_shapes_and_loss():
    head = MODELS.build(dict(type='SharedFCBBoxHead', in_channels=4, roi_feat_size=7,
                             fc_out_channels=16, num_classes=1))
    cls_score, bbox_pred = head(torch.randn(6, 4, 7, 7))
    assert cls_score.shape == (6, 2) and bbox_pred.shape == (6, 4)
    labels = torch.tensor([1, 0, 0, 0, 0, 0])
    targets = torch.zeros(6, 4)
    targets[0] = 1.0
    losses = head.loss(cls_score, bbox_pred, labels, targets)
    # loss_bbox sums over the single positive and divides by all 6 sampled RoIs
    expected = torch.nn.functional.smooth_l1_loss(bbox_pred[0], targets[0], beta=1.0,
                                                  reduction='sum') / 6
    assert losses['loss_bbox'].item() == pytest.approx(expected.item(), rel=1e-5)


def test_mask_head_shapes():
    head = MODELS.build(dict(type='FCNMaskHead', in_channels=4, conv_out_channels=8,
                             loss_mask=dict(type='BinaryCrossEntropyLoss')))
    logits = head(torch.randn(3, 4, 14, 14))
    assert logits.shape == (3, 1, 28, 28)
    loss = head.loss(logits, torch.ones(3, 28, 28), torch.ones(3, dtype=torch.int64))
    assert torch.isfinite(loss['loss_mask'])
