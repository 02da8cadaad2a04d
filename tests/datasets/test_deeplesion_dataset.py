import json
import os.path as osp

import numpy as np
import pytest

from a3d_det.datasets import DeepLesionDataset
from a3d_det.datasets.mask_rle import encode_rle
from a3d_det.registry import DATASETS

F5, F7 = '000001_01_01/005.png', '000001_01_01/007.png'


@pytest.fixture
def records(lesion_record):
    return [
        lesion_record(F5, (1, 2, 5, 6), split=1, interval=1.25),
        lesion_record(F5, (10, 10, 20, 14), split=1, noisy=True, interval=1.25),
        lesion_record(F5, (3, 3, 8, 9), split=1, interval=1.25, lesion_type=4),
        lesion_record(F7, (2, 2, 4, 4), split=1, noisy=True),   # only noisy: dropped
        lesion_record('000001_01_01/008.png', (2, 2, 6, 5), split=2),
        lesion_record('000001_01_01/009.png', (1, 1, 3, 3), split=3),
    ]


def test_split_noisy_and_info_keys(ramp_tree, records):
    image_dir, write_csv = ramp_tree
    root = osp.dirname(image_dir)
    write_csv(records)
    train = DeepLesionDataset(data_root=root, split='train')
    assert len(train) == 1  # 007 has only a noisy lesion
    info = train.get_data_info(0)
    assert info['file_name'] == F5
    assert info['img_path'] == osp.join(image_dir, F5) and info['image_dir'] == image_dir
    assert info['gt_bboxes'].dtype == np.float32 and info['gt_bboxes'].shape == (2, 4)
    np.testing.assert_allclose(info['gt_bboxes'], [[1, 2, 5, 6], [3, 3, 8, 9]])
    assert info['recists'].shape == (2, 8) and info['recists'].dtype == np.float32
    assert info['lesion_types'].tolist() == [-1, 4] and info['lesion_types'].dtype == np.int64
    np.testing.assert_allclose(info['diameters_mm'], [4 * 0.7, 5 * 0.7], rtol=1e-6)
    assert info['spacing'] == pytest.approx(0.7) and info['slice_interval'] == 1.25
    assert info['ori_shape'] == (32, 32) and 'gt_masks' not in info
    np.testing.assert_array_equal(info['ori_gt_bboxes'], info['gt_bboxes'])
    assert len(DeepLesionDataset(data_root=root, split='val')) == 1
    assert len(DeepLesionDataset(data_root=root, split='test')) == 1
    assert len(DeepLesionDataset(data_root=root, split=None)) == 3
    keep = DeepLesionDataset(data_root=root, split='train', filter_noisy=False)
    assert len(keep) == 2 and len(keep.get_data_info(0)['gt_bboxes']) == 3


def test_pipeline_output(ramp_tree, records):
    image_dir, write_csv = ramp_tree
    write_csv(records)
    ds = DATASETS.build(dict(
        type='DeepLesionDataset', data_root=osp.dirname(image_dir), split='train',
        num_slices=5, pipeline=[dict(type='LoadMultiSliceFromFile'),
                                dict(type='LoadLesionAnnotations'), dict(type='WindowCT'),
                                dict(type='PadCT', size_divisor=16),
                                dict(type='PackLesionInputs')]))
    out = ds[0]
    assert out['inputs'].shape == (1, 5, 16, 16)
    sample = out['data_samples']
    assert sample.gt_instances.masks.shape == (2, 16, 16)
    assert sample.slice_interval == 1.25 and sample.thickness == 1.25
    assert sample.gt_lesion_types.tolist() == [-1, 4]


def test_dataset_fills_and_checks_transform_arguments(ramp_tree, records):
    image_dir, write_csv = ramp_tree
    write_csv(records)
    root = osp.dirname(image_dir)
    ds = DeepLesionDataset(data_root=root, num_slices=7, slice_interval=None,
                           window=(-100, 100),
                           pipeline=[dict(type='LoadMultiSliceFromFile'), dict(type='WindowCT')])
    load, window = ds.pipeline.transforms
    assert load.num_slices == 7 and load.slice_interval is None
    assert window.window == (-100.0, 100.0)
    with pytest.raises(ValueError, match='disagrees'):
        DeepLesionDataset(data_root=root, num_slices=7,
                          pipeline=[dict(type='LoadMultiSliceFromFile', num_slices=3)])


def test_prepared_annotation_file(ramp_tree):
    image_dir, write_csv = ramp_tree
    root = osp.dirname(image_dir)
    mask = np.zeros((6, 8), bool)
    mask[2:5, 1:4] = True
    entry = dict(file_name=F5, split=1, spacing=0.7, slice_interval=1.25, ori_shape=[6, 8],
                 gt_bboxes=[[1, 2, 3, 4], [0, 0, 2, 2]], recists=[[0] * 8, [0] * 8],
                 lesion_types=[-1, -1], diameters_mm=[1.0, 1.0], noisy=[False, True],
                 gt_masks=[encode_rle(mask), encode_rle(~mask)])
    with open(osp.join(root, 'prep.json'), 'w') as f:
        json.dump(dict(metainfo=dict(classes=['lesion']), data_list=[entry]), f)
    ds = DeepLesionDataset(data_root=root, ann_file='prep.json', split='train',
                           pipeline=[dict(type='LoadMultiSliceFromFile'),
                                     dict(type='LoadLesionAnnotations')])
    assert len(ds) == 1 and len(ds.get_data_info(0)['gt_masks']) == 1
    np.testing.assert_array_equal(ds[0]['gt_masks'][0], mask)
    assert len(DeepLesionDataset(data_root=root, ann_file='prep.json', split='val')) == 0
    with open(osp.join(root, 'bad.json'), 'w') as f:
        json.dump(dict(metainfo={}, data_list=[dict(entry, gt_masks=[encode_rle(mask)])]), f)
    with pytest.raises(ValueError, match=r'bad.json: bad entry .*1 masks for 2 lesions'):
        DeepLesionDataset(data_root=root, ann_file='bad.json')


def test_bad_dataset_arguments(ramp_tree, records, tmp_path):
    image_dir, write_csv = ramp_tree
    root = osp.dirname(image_dir)
    with pytest.raises(FileNotFoundError, match='DL_info.csv: annotation file not found'):
        DeepLesionDataset(data_root=root)
    with pytest.raises(FileNotFoundError, match='not found .*prepare_deeplesion.py'):
        DeepLesionDataset(data_root=root, ann_file='annotations/deeplesion_train.json')
    with pytest.raises(ValueError, match='split'):
        DeepLesionDataset(data_root=root, split='training')
    with pytest.raises(ValueError, match='odd'):
        DeepLesionDataset(data_root=root, num_slices=2)
    rows = records
    rows[2]['bbox'] = np.array([9.0, 3, 8, 9])  # x1 > x2 (written 1-based)
    write_csv(rows)
    with pytest.raises(ValueError, match=r'DL_info.csv, line 4 .*x1 <= x2'):
        DeepLesionDataset(data_root=root)


def test_synthetic_tree_loads(synthetic_tree):
    root, summary = synthetic_tree
    sizes = [len(DeepLesionDataset(data_root=root, split=s)) for s in ('train', 'val', 'test')]
    assert all(n > 0 for n in sizes)
    # images whose only annotation is Possibly_noisy are dropped
    assert sum(sizes) <= summary['num_images']
