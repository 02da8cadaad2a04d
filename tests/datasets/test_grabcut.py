import os.path as osp

import cv2
import numpy as np
import pytest

from a3d_det.datasets import grabcut as gc_mod
from a3d_det.datasets.deeplesion import windowing, write_png_hu
from a3d_det.datasets.grabcut import (GrabCutStats, grabcut_image_masks, recist_to_mask,
                                      windowed_to_uint8)
from a3d_det.datasets.mask_rle import decode_mask
from a3d_det.datasets.recist import recist_ellipse_mask


def lesion_slice(seed=0, contrast=60.0, angle=30.0):
    """Windowed soft-tissue slice with one elliptic lesion; its true mask, box, RECIST."""
    rng = np.random.default_rng(seed)
    h, w = 96, 96
    hu = np.full((h, w), 40.0) + rng.normal(0, 8, (h, w))
    truth = np.zeros((h, w), np.uint8)
    cx, cy, a, b = 47.0, 50.0, 14.0, 9.0
    cv2.ellipse(truth, (int(cx), int(cy)), (int(a), int(b)), angle, 0, 360, 1, -1)
    hu[truth > 0] += contrast
    t = np.deg2rad(angle)
    c, s = np.cos(t), np.sin(t)
    recist = np.array([cx - a * c, cy - a * s, cx + a * c, cy + a * s,
                       cx + b * s, cy - b * c, cx - b * s, cy + b * c])
    xs, ys = recist[0::2], recist[1::2]
    box = np.array([xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3])
    ys_t, xs_t = np.nonzero(truth)
    box = np.array([min(box[0], xs_t.min() - 1), min(box[1], ys_t.min() - 1),
                    max(box[2], xs_t.max() + 1), max(box[3], ys_t.max() + 1)])
    return windowing(hu), truth.astype(bool), box, recist


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize('seed, contrast', [(0, 60.0), (1, -50.0), (2, 80.0)])
def test_grabcut_recovers_lesion(seed, contrast):
    img, truth, box, recist = lesion_slice(seed, contrast)
    stats = GrabCutStats()
    mask = recist_to_mask(img, box, recist, stats)
    assert mask.dtype == bool and mask.shape == img.shape
    assert stats.grabcut == 1 and stats.fallback == 0
    assert iou(mask, truth) > 0.8
    x1, y1, x2, y2 = box
    ys, xs = np.nonzero(mask)
    assert xs.min() >= x1 and xs.max() <= x2 and ys.min() >= y1 and ys.max() <= y2


def test_degenerate_recist_falls_back_to_ellipse_and_is_counted():
    img, truth, box, recist = lesion_slice()
    stats = GrabCutStats()
    flat = recist.copy()
    flat[4:] = flat[[0, 1, 0, 1]]  # short axis of length 0
    mask = recist_to_mask(img, box, flat, stats)
    assert stats.fallback == 1 and stats.reasons['degenerate RECIST'] == 1
    assert mask.any()
    nan = np.full(8, np.nan)
    mask = recist_to_mask(img, box, nan, stats)
    assert stats.fallback == 2 and mask.sum() > 0  # ellipse inscribed in the box
    ys, xs = np.nonzero(mask)
    assert xs.min() >= box[0] and xs.max() <= box[2]
    assert 'ellipse fallback' in str(stats) and 'degenerate RECIST: 2' in str(stats)


def test_no_background_and_default_counter():
    img = windowing(np.random.default_rng(0).normal(40, 5, (20, 20)))
    before = gc_mod.GRABCUT_STATS.fallback
    recist = np.array([2, 10, 17, 10, 10, 4, 10, 16], float)
    mask = recist_to_mask(img, [-5, -5, 30, 30], recist)  # box covers the whole slice
    assert gc_mod.GRABCUT_STATS.fallback == before + 1
    np.testing.assert_array_equal(mask, recist_ellipse_mask(recist, (20, 20), [-5, -5, 30, 30]))


def test_uint8_conversion_never_wraps():
    vals = np.linspace(-50, 205, 256, dtype=np.float32).reshape(16, 16)
    out = windowed_to_uint8(vals)
    assert out.dtype == np.uint8
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)  # order kept
    assert out.min() == 0 and out.max() == 255
    flat = windowed_to_uint8(np.full((4, 4), -50.0))
    assert flat.max() == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='must be \\(H, W\\)'):
        recist_to_mask(np.zeros((4, 4, 3)), [0, 0, 1, 1], np.zeros(8))
    with pytest.raises(ValueError, match='4 and recist 8'):
        recist_to_mask(np.zeros((4, 4)), [0, 0, 1], np.zeros(8))


def test_grabcut_image_masks(tmp_path):
    img, truth, box, recist = lesion_slice()
    hu = (img + 50) / 255 * 3074 - 1024  # invert the window
    write_png_hu(osp.join(str(tmp_path), 'S_1_1', '005.png'), hu)
    raw = dict(file_name='S_1_1/005.png', gt_bboxes=[box.tolist()], recists=[recist.tolist()])
    res = grabcut_image_masks(str(tmp_path), raw)
    assert res['error'] is None and res['stats']['grabcut'] == 1
    assert iou(decode_mask(res['gt_masks'][0], tuple(res['ori_shape'])), truth) > 0.8
    bad = grabcut_image_masks(str(tmp_path), dict(raw, file_name='S_1_1/006.png'))
    assert bad['gt_masks'] is None and '006.png' in bad['error']
