import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.dataset.utils import worker_init_fn
from mmengine.runner import set_random_seed

from a3d_det.datasets.transforms import (LoadLesionAnnotations, PackLesionInputs, PadCT,
                                         RandomHorizontalFlip, RandomShiftScaleRotate,
                                         ResizeCT, WindowCT)
from a3d_det.datasets.transforms.geometry import apply_by_chunks, channel_chunks
from a3d_det.registry import TRANSFORMS


def disk_results(h=48, w=64, d=5, centres=((20, 16, 6),)):
    """Image (H, W, D) with disks; boxes tight around them (edge convention)."""
    img = np.full((h, w, d), -50.0, np.float32)
    masks, boxes = [], []
    for cx, cy, r in centres:
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (cx, cy), r, 1, -1)
        masks.append(m)
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        img[m.astype(bool)] = np.arange(d, dtype=np.float32) * 10 + 100
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w),
                gt_bboxes=np.array(boxes, np.float32),
                gt_labels=np.zeros(len(boxes), np.int64),
                gt_masks=np.stack(masks), file_name='000001_01_01/005.png')


def mask_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_flip_twice_is_identity_and_aligned():
    res = disk_results(centres=((20, 16, 6), (50, 30, 4)))
    ref = {k: np.copy(v) for k, v in res.items() if isinstance(v, np.ndarray)}
    once = RandomHorizontalFlip.flip(res)
    for box, m in zip(once['gt_bboxes'], once['gt_masks']):
        np.testing.assert_allclose(box, mask_box(m))
    np.testing.assert_array_equal(once['img'][:, ::-1], ref['img'])
    twice = RandomHorizontalFlip.flip(once)
    for key in ('img', 'gt_bboxes', 'gt_masks'):
        np.testing.assert_array_equal(twice[key], ref[key])


def test_flip_probability_and_flag():
    np.random.seed(0)
    t = RandomHorizontalFlip(prob=1.0)
    assert t(disk_results())['flip'] is True
    assert RandomHorizontalFlip(prob=0.0)(disk_results())['flip'] is False
    with pytest.raises(ValueError):
        RandomHorizontalFlip(prob=1.5)


def test_pure_shift_moves_boxes_masks_and_image_together():
    res = disk_results(d=7)
    t = RandomShiftScaleRotate()
    out = t.warp(res, dx=5 / 64, dy=-3 / 48, scale=1.0, angle=0.0)
    np.testing.assert_allclose(out['gt_bboxes'][0], [14 + 5, 10 - 3, 27 + 5, 23 - 3], atol=1e-4)
    np.testing.assert_allclose(out['gt_bboxes'][0], mask_box(out['gt_masks'][0]))
    assert out['img'].shape == (48, 64, 7)
    np.testing.assert_allclose(out['img'][13, 25], np.arange(7) * 10 + 100, atol=1e-3)


@pytest.mark.parametrize('angle, scale', [(15, 1.0), (-12, 1.2), (7, 0.8)])
def test_rotate_scale_keeps_boxes_on_masks(angle, scale):
    res = disk_results(centres=((30, 24, 8),))
    out = RandomShiftScaleRotate().warp(res, 0.02, 0.01, scale, angle)
    # a disk stays a disk: its box must not grow under rotation
    np.testing.assert_allclose(out['gt_bboxes'][0], mask_box(out['gt_masks'][0]), atol=1.6)
    inside = out['img'][out['gt_masks'][0].astype(bool)]
    assert np.median(inside[:, 3]) == pytest.approx(130, abs=1)


def test_lesion_pushed_out_of_view_is_dropped():
    res = disk_results(centres=((5, 24, 4), (40, 24, 5)))
    out = RandomShiftScaleRotate(shift_limit=0.5).warp(res, -20 / 64, 0.0, 1.0, 0.0)
    assert len(out['gt_bboxes']) == len(out['gt_labels']) == len(out['gt_masks']) == 1
    np.testing.assert_allclose(out['gt_bboxes'][0], mask_box(out['gt_masks'][0]))
    # partly visible lesions are clipped to the image
    res = disk_results(centres=((10, 24, 6),))
    out = RandomShiftScaleRotate().warp(res, -0.1, 0.0, 1.0, 0.0)
    assert out['gt_bboxes'][0, 0] == 0 and out['gt_bboxes'][0, 2] > 0


@pytest.mark.parametrize('flag', [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST])
@pytest.mark.parametrize('d', [1, 2, 3, 5, 7, 9])
def test_warp_in_chunks_matches_per_slice(d, flag):
    """Each slice of a volume is warped as if it were alone, whatever D.

    OpenCV (5.x) rounds its 3- and 4-channel bilinear path differently from
    the 1-channel one in the last bit (6e-8 on [0, 1) noise), so the
    comparison allows 1e-6; the 2- and >= 5-channel paths the chunks avoid
    differ by about 0.02 (and refuse bicubic), which this still catches.
    """
    rng = np.random.default_rng(d)
    img = rng.random((32, 40, d), dtype=np.float32)
    mat = cv2.getRotationMatrix2D((20, 16), 11, 1.1)
    warp = lambda x: cv2.warpAffine(x, mat, (40, 32), flags=flag)  # noqa: E731
    per_slice = np.stack([warp(np.ascontiguousarray(img[:, :, i])) for i in range(d)], 2)
    np.testing.assert_allclose(apply_by_chunks(img, warp), per_slice, rtol=0, atol=1e-6)
    assert sum(channel_chunks(d)) == d and 2 not in channel_chunks(d)
    if d >= 5 and flag == cv2.INTER_LINEAR:  # what chunking avoids
        assert np.abs(warp(img) - per_slice).max() > 1e-3


def test_resize_keeps_aspect_and_scales_boxes():
    res = disk_results(h=48, w=64)
    out = ResizeCT(size=128)(res)
    assert out['img'].shape == (96, 128, 5) and out['img_shape'] == (96, 128)
    assert out['scale_factor'] == (2.0, 2.0)
    np.testing.assert_allclose(out['gt_bboxes'][0], [28, 20, 54, 46])
    assert out['gt_masks'].shape == (1, 96, 128)
    np.testing.assert_allclose(out['gt_bboxes'][0], mask_box(out['gt_masks'][0]), atol=1)


def test_pad_to_divisor():
    res = disk_results(h=40, w=50, d=3)
    out = PadCT(size_divisor=32)(res)
    assert out['img'].shape == (64, 64, 3) and out['pad_shape'] == (64, 64)
    assert out['gt_masks'].shape == (1, 64, 64) and out['img'][63, 63, 0] == -50
    assert PadCT(size_divisor=32, pad_val=7)(disk_results(h=40, w=50))['img'][50, 60, 0] == 7


def test_window_and_load_annotations():
    res = disk_results()
    res['img'] = np.full((48, 64, 3), 513.0, np.float32)
    assert WindowCT()(res)['img'][0, 0, 0] == pytest.approx(77.5)
    res = dict(img=np.zeros((20, 30, 3), np.float32), gt_bboxes=np.array([[5, 5, 15, 11]], np.float32),
               recists=np.array([[5, 8, 15, 8, 10, 5, 10, 11]], np.float32))
    out = LoadLesionAnnotations()(res)
    assert out['gt_masks'].dtype == np.uint8 and out['gt_masks'].shape == (1, 20, 30)
    assert out['gt_labels'].dtype == np.int64 and out['gt_labels'].tolist() == [0]
    box = mask_box(out['gt_masks'][0])
    assert box[0] >= 5 and box[2] <= 16 and box[1] >= 5 and box[3] <= 12
    assert out['gt_masks'][0, 8, 10] == 1
    assert 'gt_masks' not in LoadLesionAnnotations(with_mask=False)(
        dict(img=res['img'], gt_bboxes=res['gt_bboxes']))


def test_pack():
    res = disk_results(d=7)
    res.update(ori_gt_bboxes=np.array([[1, 2, 3, 4]], np.float32), spacing=0.8,
               slice_interval=5.0, thickness=5.0, img_path='/x/005.png', image_dir='/x',
               gt_lesion_types=np.array([3]), gt_diameters_mm=np.array([12.0]))
    out = PackLesionInputs()(res)
    assert out['inputs'].shape == (1, 7, 48, 64) and out['inputs'].dtype == torch.float32
    np.testing.assert_array_equal(out['inputs'][0, 2].numpy(), res['img'][:, :, 2])
    s = out['data_samples']
    assert s.gt_instances.bboxes.dtype == torch.float32
    assert s.gt_instances.labels.dtype == torch.int64
    assert s.gt_instances.masks.dtype == torch.bool and s.gt_instances.masks.shape == (1, 48, 64)
    for key in ('file_name', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                'spacing', 'slice_interval', 'thickness', 'ori_gt_bboxes', 'gt_lesion_types',
                'gt_diameters_mm', 'img_path', 'image_dir'):
        assert key in s.metainfo, key
    assert s.slice_interval == 5.0 and s.gt_lesion_types.dtype == np.int64


def aug_pipeline():
    return Compose([TRANSFORMS.build(dict(type='RandomHorizontalFlip')),
                    TRANSFORMS.build(dict(type='RandomShiftScaleRotate', prob=1.0))])


def run_aug(seed):
    set_random_seed(seed)
    outs = [aug_pipeline()(disk_results()) for _ in range(4)]
    return np.stack([o['gt_bboxes'][0] for o in outs]), [o['flip'] for o in outs]


def test_seeded_augmentation_is_reproducible():
    a, b, c = run_aug(3), run_aug(3), run_aug(4)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


def worker_boxes(worker_id, seed):
    # what mmengine's Runner does in each data loader worker when
    # randomness=dict(seed=...) is set
    worker_init_fn(worker_id, num_workers=2, rank=0, seed=seed)
    pipe = aug_pipeline()
    return np.stack([pipe(disk_results())['gt_bboxes'][0] for _ in range(3)])


def test_worker_seeding_gives_reproducible_distinct_streams():
    np.testing.assert_array_equal(worker_boxes(0, 7), worker_boxes(0, 7))
    assert not np.array_equal(worker_boxes(0, 7), worker_boxes(1, 7))


def test_empty_ground_truth_through_the_pipeline():
    pipe = Compose([TRANSFORMS.build(dict(type=t, **kw)) for t, kw in [
        ('LoadLesionAnnotations', {}), ('WindowCT', {}), ('RandomHorizontalFlip', dict(prob=1)),
        ('RandomShiftScaleRotate', dict(prob=1)), ('ResizeCT', dict(size=40)),
        ('PadCT', dict(size_divisor=32)), ('PackLesionInputs', {})]])
    res = dict(img=np.zeros((30, 20, 3), np.float32), gt_bboxes=np.zeros((0, 4), np.float32),
               recists=np.zeros((0, 8), np.float32))
    out = pipe(res)
    gt = out['data_samples'].gt_instances
    assert out['inputs'].shape == (1, 3, 64, 32)
    assert gt.bboxes.shape == (0, 4) and gt.labels.shape == (0,)
    assert gt.masks.shape == (0, 64, 32)


def test_resize_clips_boxes_and_drops_empty_ones():
    res = dict(img=np.zeros((20, 20, 1), np.float32),
               gt_bboxes=np.array([[-4, 2, 6, 8], [25, 2, 30, 8]], np.float32),
               gt_labels=np.zeros(2, np.int64))
    out = ResizeCT(size=40)(res)
    np.testing.assert_allclose(out['gt_bboxes'], [[0, 4, 12, 16]])
    assert out['gt_labels'].tolist() == [0]


def test_load_annotations_bad_masks_named():
    base = dict(img=np.zeros((6, 8, 1), np.float32), file_name='000001_01_01/005.png',
                gt_bboxes=np.array([[1, 1, 4, 4]], np.float32))
    with pytest.raises(ValueError, match='005.png: mask 0: RLE size'):
        LoadLesionAnnotations()(dict(base, gt_masks=[{'size': [5, 8], 'counts': [40]}]))
    with pytest.raises(ValueError, match='005.png: 2 masks for 1 boxes'):
        LoadLesionAnnotations()(dict(base, gt_masks=[[[1, 1, 2, 1, 2, 2]]] * 2))
    with pytest.raises(ValueError, match='005.png: masks of shape'):
        LoadLesionAnnotations()(dict(base, gt_masks=np.zeros((1, 5, 5), np.uint8)))
    decoded = np.zeros((1, 6, 8), np.uint8)
    decoded[0, 2, 3] = 1
    np.testing.assert_array_equal(LoadLesionAnnotations()(dict(base, gt_masks=decoded))['gt_masks'],
                                  decoded)
