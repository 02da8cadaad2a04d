"""The published RPN anchor rules on torchvision's RPN: ``min_pos_iou`` for a
lesion's best anchor and ``allowed_border`` for anchors crossing the input."""
from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from a3d_det.registry import MODELS

ANCHORS = dict(type='AnchorGenerator', sizes=((16, 24, 32, 48, 96, 192),),
               aspect_ratios=((0.5, 1.0, 2.0),))


def rpn(**kw):
    return MODELS.build(dict(type='LesionRPNHead', in_channels=8, anchor_generator=ANCHORS,
                             **kw))


def iou(a, b):
    """IoU of two x1y1x2y2 boxes, by hand."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def labels_for(head, anchors, gts, size=(64, 64)):
    targets = [dict(boxes=torch.tensor(gts, dtype=torch.float32).reshape(-1, 4),
                    padded_size=torch.tensor(size))]
    labels, _ = head.assign_targets_to_anchors([torch.tensor(anchors, dtype=torch.float32)],
                                               targets)
    return labels[0].tolist()


def test_tiny_lesion_best_anchor_needs_min_pos_iou():
    anchors = [[0, 0, 16, 16], [32, 32, 48, 48]]
    tiny = [2, 2, 6, 6]           # 4 x 4 px inside the first 16 x 16 anchor
    small = [32, 32, 44, 44]      # 12 x 12 px in the second anchor
    assert iou(anchors[0], tiny) == pytest.approx(16 / 256)       # < 0.3
    assert iou(anchors[1], small) == pytest.approx(144 / 256)     # in [0.3, 0.7)
    # torchvision's rule (min_pos_iou=0): each best anchor positive at any IoU
    assert labels_for(rpn(), anchors, [tiny, small]) == [1.0, 1.0]
    # published (min_pos_iou=0.3): the tiny lesion's best anchor (IoU 0.06)
    # stays negative, the small one's (IoU 0.56) becomes positive
    assert labels_for(rpn(min_pos_iou=0.3), anchors, [tiny, small]) == [0.0, 1.0]
    # between the thresholds without being a best match: ignored
    assert labels_for(rpn(min_pos_iou=0.3), [[32, 32, 48, 48], [32, 32, 47, 47]],
                      [small]) == [-1.0, 1.0]


def test_border_anchors_ignored():
    anchors = [[-8, -8, 8, 8],      # crosses top-left by 8 px
               [0, 0, 16, 16],      # touches the border from inside
               [50, 50, 66, 66],    # crosses bottom-right by 2 px
               [48, 48, 64, 64],    # touches from inside
               [20, 20, 36, 36]]
    # a lesion overlapping no anchor: all negative (min_pos_iou 0.3, else
    # torchvision's rule makes every IoU-0 anchor a "best" match)
    far = [[200, 200, 210, 210]]
    assert labels_for(rpn(min_pos_iou=0.3), anchors, far) == [0.0] * 5   # -1: keep all
    assert labels_for(rpn(min_pos_iou=0.3, allowed_border=0), anchors, far) == [-1, 0, -1, 0, 0]
    assert labels_for(rpn(min_pos_iou=0.3, allowed_border=2), anchors, far) == [-1, 0, 0, 0, 0]
    # an empty image: every anchor is background except the ignored ones
    assert labels_for(rpn(allowed_border=0), anchors, []) == [-1, 0, -1, 0, 0]
    # a positive across the border is ignored as well
    assert labels_for(rpn(allowed_border=0), [[-8, -8, 8, 8]], [[-8, -8, 8, 8]]) == [-1.0]
    # the padded input's size counts (height 32, width 96 here)
    assert labels_for(rpn(allowed_border=0), [[50, 0, 66, 16], [50, 20, 66, 36]], [],
                      size=(32, 96)) == [0.0, -1.0]
    with pytest.raises(ValueError, match='allowed_border'):
        rpn(allowed_border=-3)


def test_forward_uses_the_padded_size():
    head = rpn(min_pos_iou=0.3, allowed_border=0)
    head.train()
    feature = torch.randn(1, 8, 16, 24)
    images = ImageList(torch.zeros(1, 1, 3, 64, 96), [(60, 90)])
    seen = {}
    real = type(head).assign_targets_to_anchors

    def spy(self, anchors, targets):
        seen['size'] = targets[0]['padded_size'].tolist()
        labels, matched = real(self, anchors, targets)
        seen['ignored'] = int((labels[0] == -1).sum())
        a = anchors[0]
        seen['crossing'] = int(((a[:, 0] < 0) | (a[:, 1] < 0) | (a[:, 2] > 96)
                                | (a[:, 3] > 64)).sum())
        return labels, matched

    with mock.patch.object(type(head), 'assign_targets_to_anchors', spy):
        _, losses = head(images, feature, [torch.tensor([[10.0, 10.0, 30.0, 40.0]])])
    assert seen['size'] == [64, 96]
    assert seen['ignored'] >= seen['crossing'] > 0
    assert all(torch.isfinite(v) for v in losses.values())


def mmdet_v1_anchors(base_size, scales, ratios, stride, feat_h, feat_w):
    """mmdet v1's AnchorGenerator restated (inclusive pixels, centre
    (base_size - 1) / 2, rounded), converted to pixel-edge x1y1x2y2 (+1 on
    the end), cell-major with the base anchors inner."""
    ctr = 0.5 * (base_size - 1)
    base = []
    for r in ratios:
        h_ratio = math.sqrt(r)
        w_ratio = 1 / h_ratio
        for s in scales:
            ws, hs = base_size * w_ratio * s, base_size * h_ratio * s
            base.append([round(ctr - 0.5 * (ws - 1)), round(ctr - 0.5 * (hs - 1)),
                         round(ctr + 0.5 * (ws - 1)) + 1, round(ctr + 0.5 * (hs - 1)) + 1])
    out = []
    for y in range(feat_h):
        for x in range(feat_w):
            for b in base:
                out.append([b[0] + x * stride, b[1] + y * stride,
                            b[2] + x * stride, b[3] + y * stride])
    return torch.tensor(out, dtype=torch.float32)


def test_center_offset_anchors_are_the_published_ones():
    from torchvision.models.detection.image_list import ImageList as IL
    gen = MODELS.build(dict(type='LesionRPNHead', in_channels=8, anchor_generator=dict(
        ANCHORS, type='CenterOffsetAnchorGenerator', center_offset=0.5))).anchor_generator
    images = IL(torch.zeros(1, 1, 3, 24, 32), [(24, 32)])
    ours = gen(images, [torch.zeros(1, 8, 6, 8)])[0]
    ref = mmdet_v1_anchors(4, (4, 6, 8, 12, 24, 48), (0.5, 1.0, 2.0), 4, 6, 8)
    # same set of boxes per cell (torchvision orders ratios/scales alike)
    assert ours.shape == ref.shape
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(ours) == key(ref)
    centres = (ours[:, :2] + ours[:, 2:]) / 2
    assert centres[:18].tolist() == [[2.0, 2.0]] * 18     # (0 + 0.5) * stride 4
    plain = rpn().anchor_generator(images, [torch.zeros(1, 8, 6, 8)])[0]
    torch.testing.assert_close(ours, plain + 2.0)
