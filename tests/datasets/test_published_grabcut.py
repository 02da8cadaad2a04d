"""The published GrabCut masks (uint8 wrap-around included) as an option of
the mask preparation, against the published script's steps restated."""
from __future__ import annotations

import json
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from a3d_det.datasets.grabcut import (GrabCutStats, grabcut_image_masks,
                                      published_grabcut_mask, wraparound_uint8)
from a3d_det.datasets.mask_rle import decode_mask
from tests.helpers.tools import load_tool


def test_wraparound_cast():
    v = np.array([-50.0, -49.7, -0.5, 0.0, 0.9, 127.5, 204.9, 205.0])
    # truncation towards zero, then modulo 256
    assert wraparound_uint8(v).tolist() == [206, 207, 0, 0, 0, 127, 204, 205]


def lesion_slice():
    """A windowed slice: air (-50) around a body (60), a lung (-5, where the
    uint8 cast wraps) and a nodule (40) in it."""
    rng = np.random.default_rng(0)
    img = np.full((96, 96), -50.0)
    cv2.circle(img, (48, 48), 40, 60.0, -1)
    cv2.circle(img, (48, 48), 25, -5.0, -1)
    cv2.ellipse(img, (50, 44), (9, 6), 20, 0, 360, 40.0, -1)
    img += rng.normal(0, 8, img.shape)
    box = np.array([38.0, 35.0, 62.0, 54.0])
    recist = np.array([41.5, 40.2, 58.7, 48.1, 47.3, 49.6, 52.4, 38.9])
    return img, box, recist


def published_steps(image, box, recist):
    """mask_generateor.generate_mask, restated: wrap-around uint8 in 3
    channels, box polygon = 3 (probable foreground), RECIST kite in order
    0, 2, 1, 3 = 1 (foreground), GrabCut with the mask, 3 iterations."""
    gray = np.trunc(image).astype(np.int64)
    gray = np.where(gray < 0, gray + 256, gray).astype(np.uint8)
    img3 = np.dstack([gray] * 3)
    mask = np.zeros(image.shape, np.uint8)
    x1, y1, x2, y2 = box
    cv2.fillConvexPoly(mask, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]).astype(np.int32), 3)
    pts = recist.astype(np.int32).reshape((4, 2))[[0, 2, 1, 3]]
    cv2.fillConvexPoly(mask, pts, 1)
    cv2.grabCut(img3, mask, (0, 0, 1, 1), None, None, 3, cv2.GC_INIT_WITH_MASK)
    return np.where((mask == 2) | (mask == 0), 0, 1).astype(bool)


def test_published_mask_matches_published_steps():
    img, box, recist = lesion_slice()
    stats = GrabCutStats()
    cv2.setRNGSeed(123)
    ours = published_grabcut_mask(img, box, recist, stats)
    cv2.setRNGSeed(0)
    ref = published_steps(img, box, recist)
    np.testing.assert_array_equal(ours, ref)
    assert stats.grabcut == 1 and ours[44, 50]
    # seeded per mask: the same whatever OpenCV's RNG state
    np.testing.assert_array_equal(published_grabcut_mask(img, box, recist), ours)
    # the wrap-around matters here: a clipping cast gives another mask
    cv2.setRNGSeed(0)
    clipped = published_steps(np.clip(img, 0, None), box, recist)
    assert (clipped != ours).sum() > 10


@pytest.mark.slow
def test_prepare_tool_option(synthetic_tree, tmp_path):
    root = str(tmp_path / 'DeepLesion')
    shutil.copytree(synthetic_tree[0], root)
    prep = load_tool('dataset_converters/prepare_deeplesion.py')
    assert prep.main(['--data-root', root, '--grabcut', 'published', '--no-slice-check']) == 0
    with open(osp.join(root, 'annotations', 'deeplesion_train.json')) as f:
        data = json.load(f)
    assert data['metainfo']['grabcut'] == 'published'
    entry = data['data_list'][0]
    raw = dict(file_name=entry['file_name'], gt_bboxes=entry['gt_bboxes'],
               recists=entry['recists'])
    again = grabcut_image_masks(osp.join(root, 'Images_png'), raw, method='published')
    shape = tuple(entry['ori_shape'])
    for a, b in zip(entry['gt_masks'], again['gt_masks']):
        np.testing.assert_array_equal(decode_mask(a, shape), decode_mask(b, shape))
    # a different method does not reuse the cached masks
    assert prep.main(['--data-root', root, '--no-slice-check']) == 0
    with open(osp.join(root, 'annotations', 'deeplesion_train.json')) as f:
        assert json.load(f)['metainfo']['grabcut'] == 'corrected'
    with pytest.raises(ValueError, match='method'):
        grabcut_image_masks(root, raw, method='fast')
