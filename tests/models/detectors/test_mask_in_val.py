"""Validation and test loops skip the mask head; boxes and scores unchanged."""
import copy

import pytest
import torch
from mmengine.config import Config

from a3d_det.engine import enable_masks_if_needed, masks_needed
from a3d_det.registry import METRICS, MODELS


def _data(sample_factory, scale=0.5):
    torch.manual_seed(1)
    images = [torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 48)]
    samples = [sample_factory(64, 64, [[8, 8, 30, 40]], scale=scale),
               sample_factory(64, 48, [], scale=scale)]
    return dict(inputs=images, data_samples=samples)


def _preds(model, data, step):
    with torch.no_grad():
        return [s.pred_instances for s in getattr(model, step)(copy.deepcopy(data))]


def test_loops_skip_masks_and_keep_boxes_and_scores(tiny_detector, sample_factory):
    tiny_detector.eval()
    data = _data(sample_factory)
    calls = []
    tiny_detector.roi_head.mask_head.register_forward_hook(lambda *a: calls.append(1))
    assert tiny_detector.with_mask_in_val is False  # the default
    without = _preds(tiny_detector, data, 'val_step')
    assert _preds(tiny_detector, data, 'test_step')[0].keys() == without[0].keys()
    assert calls == []  # the mask head never ran
    tiny_detector.with_mask_in_val = True
    with_masks = _preds(tiny_detector, data, 'val_step')
    assert len(calls) == 2  # once per image
    assert sum(p.bboxes.shape[0] for p in without) > 0
    for a, b in zip(without, with_masks):
        assert 'masks' not in a and set(a.keys()) == {'bboxes', 'scores', 'labels'}
        assert torch.equal(a.bboxes, b.bboxes)
        assert torch.equal(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)
        # masks in original pixels (inputs resized by 0.5)
        assert b.masks.dtype == torch.bool and b.masks.shape[0] == b.bboxes.shape[0]
    assert with_masks[0].masks.shape[1:] == (128, 128)
    assert with_masks[1].masks.shape[1:] == (128, 96)


def test_predict_mode_keeps_masks(tiny_detector, sample_factory):
    """forward(mode='predict') (no loop) predicts masks whatever the option."""
    tiny_detector.eval()
    data = tiny_detector.data_preprocessor(_data(sample_factory))
    with torch.no_grad():
        preds = tiny_detector(**data, mode='predict')
    assert all('masks' in p.pred_instances for p in preds)


def test_option_from_config(detector_cfg_factory):
    model = MODELS.build(dict(detector_cfg_factory(), with_mask_in_val=True))
    assert model.with_mask_in_val is True


class _MaskMetric:
    requires_masks = True


def test_masks_needed_by_a_hook_or_a_metric(detector_cfg_factory):
    METRICS.register_module(name='_TestMaskMetric', module=_MaskMetric, force=True)
    base = Config(dict(model=detector_cfg_factory(),
                       val_evaluator=dict(type='DeepLesionFROCMetric'),
                       test_evaluator=[dict(type='DeepLesionFROCMetric')]))
    assert not masks_needed(base)
    assert enable_masks_if_needed(base) is False
    assert 'with_mask_in_val' not in base.model

    for extra, expected in [
            (dict(custom_hooks=[dict(type='LesionVisualizationHook', show_dir='x')]), True),
            (dict(custom_hooks=[dict(type='LesionVisualizationHook', show_dir='x',
                                     draw_masks=False)]), False),
            (dict(test_evaluator=[dict(type='DeepLesionFROCMetric'),
                                  dict(type='_TestMaskMetric')]), True),
            (dict(val_evaluator=dict(metrics=[dict(type='_TestMaskMetric')])), True)]:
        cfg = copy.deepcopy(base)
        cfg.merge_from_dict(extra)
        assert masks_needed(cfg) is expected, extra
        assert enable_masks_if_needed(cfg) is expected
        assert cfg.model.get('with_mask_in_val', False) is expected


def test_enable_leaves_other_models_and_explicit_settings(detector_cfg_factory):
    hook = [dict(type='LesionVisualizationHook', show_dir='x')]
    other = Config(dict(model=dict(type='FPN3Dto2D'), custom_hooks=hook))
    assert enable_masks_if_needed(other) is False and 'with_mask_in_val' not in other.model
    explicit = Config(dict(model=dict(detector_cfg_factory(), with_mask_in_val=True)))
    assert enable_masks_if_needed(explicit) is True


@pytest.mark.parametrize('with_mask', [True, False])
def test_roi_head_predict_without_detections(tiny_detector, with_mask):
    """No box above the score threshold: empty results, masks only if asked."""
    head = tiny_detector.roi_head
    head.score_thr = 1.1
    feature = torch.randn(1, 16, 16, 16)
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64))
    with torch.no_grad():
        result = head.predict(feature, [torch.tensor([[4.0, 4.0, 30.0, 30.0]])], [meta],
                              with_mask=with_mask)[0]
    assert result.bboxes.shape == (0, 4)
    assert ('masks' in result) is with_mask
    if with_mask:
        assert result.masks.shape == (0, 64, 64)


def test_predict_matches_the_torchvision_steps(tiny_detector, sample_factory):
    """Independent reference: threshold, remove_small_boxes, batched NMS and
    torchvision's paste_masks_in_image, as the head did before combining
    the filters and pasting with one host read."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste
    from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

    from a3d_det.models.detectors.lesion_mask_rcnn import _image_list

    tiny_detector.eval()
    head = tiny_detector.roi_head
    data = tiny_detector.data_preprocessor(_data(sample_factory, scale=1.0))
    with torch.no_grad():
        feature = tiny_detector.extract_feat(data['inputs'], data['data_samples'])
        proposals, _ = tiny_detector.rpn_head(
            _image_list(data['inputs'], data['data_samples']), feature)
        metas = [s.metainfo for s in data['data_samples']]
        results = head.predict(feature, proposals, metas)
        cls_score, bbox_pred = head(feature, proposals)
        for i, (props, meta, result) in enumerate(zip(
                proposals, metas, results)):
            rows = slice(sum(p.shape[0] for p in proposals[:i]),
                         sum(p.shape[0] for p in proposals[:i + 1]))
            scores = cls_score[rows].softmax(-1)[:, 1]
            boxes = clip_boxes_to_image(head.box_coder.decode_single(
                bbox_pred[rows], props).reshape(-1, 4), meta['img_shape'])
            keep = torch.where(scores > head.score_thr)[0]
            boxes, scores = boxes[keep], scores[keep]
            keep = remove_small_boxes(boxes, head.min_box_size)
            boxes, scores = boxes[keep], scores[keep]
            keep = batched_nms(boxes, scores, torch.ones_like(scores, dtype=torch.int64),
                               head.nms_iou)[:head.max_per_img]
            boxes, scores = boxes[keep], scores[keep]
            assert boxes.shape[0] > 0
            assert torch.equal(result.bboxes, boxes) and torch.equal(result.scores, scores)
            logits = head.mask_head(head.mask_roi_extractor(feature[i:i + 1], [boxes]))
            masks = tv_paste(logits[:, :1].sigmoid(), boxes, meta['ori_shape'])[:, 0]
            assert torch.equal(result.masks, masks > head.mask_thr)


def test_no_per_detection_synchronisation(tiny_detector, sample_factory):
    """Predicting masks adds no synchronising operation per detection (the
    torchvision paste read each box from the device about 13 times), and the
    RoI head's loss assigns no labels through boolean masks."""
    from a3d_det.utils.host_sync import HostSyncCounter

    data = _data(sample_factory)
    tiny_detector.train()
    with HostSyncCounter(depth=1) as counter:  # innermost a3d_det/torchvision line
        tiny_detector(**tiny_detector.data_preprocessor(data, True), mode='loss')
    assert any(site.startswith('lesion_roi_head') for _, site in counter.counts)
    assert not [k for k in counter.counts if k[0].endswith('[bool]')
                and k[1].startswith('lesion_roi_head')], counter.counts
    tiny_detector.eval()
    counts = {}
    for with_mask in (False, True):
        with torch.no_grad(), HostSyncCounter() as counter:
            preds = tiny_detector.predict(**tiny_detector.data_preprocessor(data),
                                          with_mask=with_mask)
        counts[with_mask] = counter.by_operator()
    assert sum(len(p.pred_instances.bboxes) for p in preds) > 10
    assert counts[True] == counts[False]
    assert 'aten::_local_scalar_dense' not in counts[True]
