"""RandomShiftScaleRotate's published options: bicubic, reflect-101 border
(image and masks), boxes from the four rotated corners."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from a3d_det.datasets.transforms import RandomShiftScaleRotate, affine_boxes

PUBLISHED = dict(interpolation='bicubic', border_mode='reflect101', box_mode='corners')


def rotated_corner_box(box, angle_deg, scale, cx, cy):
    """Independent rule: rotate the 4 corners (pixel-edge coordinates) by
    ``angle`` counter-clockwise on screen (y down) about the pixel centre
    (cx, cy), scale, and take their envelope."""
    th = math.radians(angle_deg)
    c, s = scale * math.cos(th), scale * math.sin(th)
    ox, oy = cx + 0.5, cy + 0.5          # the centre in edge coordinates
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])):
        xs.append(ox + c * (x - ox) + s * (y - oy))
        ys.append(oy - s * (x - ox) + c * (y - oy))
    return [min(xs), min(ys), max(xs), max(ys)]


def square_results(h=64, w=64, d=3, box=(22, 22, 42, 42)):
    img = np.zeros((h, w, d), np.float32)
    mask = np.zeros((1, h, w), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 100.0
    mask[0, y1:y2, x1:x2] = 1
    return dict(img=img, gt_bboxes=np.array([box], np.float32),
                gt_labels=np.zeros(1, np.int64), gt_masks=mask)


def test_corner_box_grows_1_22x_at_15_degrees():
    out = RandomShiftScaleRotate(**PUBLISHED).warp(square_results(), 0.0, 0.0, 1.0, 15.0)
    box = out['gt_bboxes'][0]
    expected = rotated_corner_box((22, 22, 42, 42), 15.0, 1.0, 31.5, 31.5)
    np.testing.assert_allclose(box, expected, atol=1e-4)
    growth = (box[2] - box[0]) / 20
    assert growth == pytest.approx(math.cos(math.radians(15)) + math.sin(math.radians(15)))
    assert growth == pytest.approx(1.2247, abs=1e-4)
    # the ellipse rule keeps a square's inscribed disk: no growth
    out = RandomShiftScaleRotate().warp(square_results(), 0.0, 0.0, 1.0, 15.0)
    assert (out['gt_bboxes'][0, 2] - out['gt_bboxes'][0, 0]) / 20 == pytest.approx(1.0)


@pytest.mark.parametrize('angle, scale, box', [(-12.0, 1.15, (5, 30, 25, 44)),
                                               (7.0, 0.85, (40, 8, 60, 20))])
def test_corner_box_off_centre_matches_independent_rule(angle, scale, box):
    mat = cv2.getRotationMatrix2D((31.5, 23.5), angle, scale)
    got = affine_boxes(np.array([box], np.float32), mat, 'corners')[0]
    np.testing.assert_allclose(got, rotated_corner_box(box, angle, scale, 31.5, 23.5), atol=1e-4)


def test_corner_box_encloses_the_warped_square_mask():
    out = RandomShiftScaleRotate(**PUBLISHED).warp(square_results(), 0.03, -0.02, 1.1, 15.0)
    ys, xs = np.nonzero(out['gt_masks'][0])
    box = out['gt_bboxes'][0]
    assert xs.min() >= box[0] - 0.5 and xs.max() + 1 <= box[2] + 0.5
    assert ys.min() >= box[1] - 0.5 and ys.max() + 1 <= box[3] + 0.5
    # and the mask follows the image (bicubic: the square's inside stays 100)
    inside = out['img'][out['gt_masks'][0].astype(bool)][:, 1]
    assert np.median(inside) == pytest.approx(100.0, abs=1.0)


def test_reflect101_border_for_image_and_masks():
    rng = np.random.default_rng(0)
    res = square_results(box=(0, 20, 6, 30))       # a lesion touching the left border
    res['img'] = rng.random((64, 64, 3)).astype(np.float32)
    img = res['img'].copy()
    mask = res['gt_masks'][0].copy()
    t = RandomShiftScaleRotate(interpolation='bilinear', border_mode='reflect101')
    out = t.warp(res, 4 / 64, 0.0, 1.0, 0.0)       # shift right by 4 px
    # column k < 4 comes from column 4 - k (reflect-101 mirrors about column 0)
    for k in range(4):
        np.testing.assert_allclose(out['img'][:, k], img[:, 4 - k], atol=1e-5)
        np.testing.assert_array_equal(out['gt_masks'][0][:, k], mask[:, 4 - k])
    np.testing.assert_allclose(out['img'][:, 4:], img[:, :60], atol=1e-5)
    # constant border: air (the image minimum) and an empty mask
    res = square_results(box=(0, 20, 6, 30))
    out = RandomShiftScaleRotate().warp(res, 4 / 64, 0.0, 1.0, 0.0)
    assert (out['img'][:, :4] == 0).all() and (out['gt_masks'][0][:, :4] == 0).all()


def test_bicubic_differs_from_bilinear_and_options_validated():
    rng = np.random.default_rng(1)
    res = dict(img=rng.random((32, 32, 5)).astype(np.float32))
    a = RandomShiftScaleRotate(interpolation='bicubic').warp(dict(res), 0, 0, 1.1, 9.0)['img']
    b = RandomShiftScaleRotate().warp(dict(res), 0, 0, 1.1, 9.0)['img']
    mat = cv2.getRotationMatrix2D((15.5, 15.5), 9.0, 1.1)
    ref = cv2.warpAffine(np.ascontiguousarray(res['img'][:, :, 4]), mat, (32, 32),
                         flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=float(res['img'].min()))
    np.testing.assert_allclose(a[:, :, 4], ref, atol=1e-6)
    assert np.abs(a - b).max() > 1e-3
    for bad in (dict(interpolation='lanczos'), dict(border_mode='wrap'), dict(box_mode='hull')):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RandomShiftScaleRotate(**bad)
